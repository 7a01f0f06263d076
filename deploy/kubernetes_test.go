package deploy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The parts of the manifests the tests check; the rest is Kubernetes'.
type (
	manifest struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec      yaml.Node `yaml:"spec"`
		Resources []string  `yaml:"resources"` // Kustomization
		file      string
	}
	serviceSpec struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
			Protocol   string `yaml:"protocol"`
		} `yaml:"ports"`
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	probe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
			Protocol      string `yaml:"protocol"`
		} `yaml:"ports"`
		LivenessProbe  *probe `yaml:"livenessProbe"`
		ReadinessProbe *probe `yaml:"readinessProbe"`
		VolumeMounts   []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	statefulSetSpec struct {
		ServiceName         string        `yaml:"serviceName"`
		Replicas            int           `yaml:"replicas"`
		PodManagementPolicy string        `yaml:"podManagementPolicy"`
		Selector            labelSelector `yaml:"selector"`
		Template            struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsUser int `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
				Volumes    []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Items      []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	}
	pdbSpec struct {
		Selector labelSelector `yaml:"selector"`
	}
)

// readManifests parses every document of every YAML file in
// deploy/kubernetes/.
func readManifests(t *testing.T) []manifest {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var all []manifest
	for _, file := range files {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var m manifest
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, file)
			m.file = filepath.Base(file)
			require.NotEmpty(t, m.APIVersion, "%s: a document without apiVersion", file)
			require.NotEmpty(t, m.Kind, "%s: a document without kind", file)
			if m.Kind != "Kustomization" {
				require.NotEmpty(t, m.Metadata.Name, "%s: a %s without metadata.name", file, m.Kind)
			}
			all = append(all, m)
		}
	}
	return all
}

// only returns the one manifest of kind, its spec decoded into spec.
func only(t *testing.T, all []manifest, kind string, spec any) manifest {
	t.Helper()
	var found []manifest
	for _, m := range all {
		if m.Kind == kind {
			found = append(found, m)
		}
	}
	require.Len(t, found, 1, "kubernetes/ should have one %s", kind)
	if spec != nil {
		require.NoError(t, found[0].Spec.Decode(spec), "%s's spec", kind)
	}
	return found[0]
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// The manifests agree with each other and with the binary: the agent's
// flags exist, its ports are the containers' and the Service's, the probes
// ask for paths the agent serves, the data dir and the passphrase file sit
// on the volumes meant for them.
func TestKubernetesManifests(t *testing.T) {
	all := readManifests(t)

	kust := only(t, all, "Kustomization", nil)
	var files []string
	for _, m := range all {
		if m.Kind != "Kustomization" && !slices.Contains(files, m.file) {
			files = append(files, m.file)
		}
	}
	assert.ElementsMatch(t, files, kust.Resources, "kustomization.yaml's resources are the other manifests")

	var svc serviceSpec
	svcM := only(t, all, "Service", &svc)
	var sts statefulSetSpec
	only(t, all, "StatefulSet", &sts)
	var pdb pdbSpec
	only(t, all, "PodDisruptionBudget", &pdb)

	podLabels := sts.Template.Metadata.Labels
	assert.Equal(t, 3, sts.Replicas)
	assert.Equal(t, svcM.Metadata.Name, sts.ServiceName, "the StatefulSet's serviceName is the headless Service")
	assert.Equal(t, "Parallel", sts.PodManagementPolicy, "a pod is ready only with peers: the pods must start together")
	assert.Equal(t, "None", svc.ClusterIP, "the Service is headless")
	assert.True(t, svc.PublishNotReadyAddresses, "the pods must be found before they are ready")
	assert.True(t, subset(sts.Selector.MatchLabels, podLabels), "the StatefulSet's selector matches its pods")
	assert.True(t, subset(svc.Selector, podLabels), "the Service's selector matches the pods")
	assert.True(t, subset(pdb.Selector.MatchLabels, podLabels), "the PodDisruptionBudget's selector matches the pods")

	require.Len(t, sts.Template.Spec.Containers, 1)
	c := sts.Template.Spec.Containers[0]
	require.NotEmpty(t, c.Args)
	require.Equal(t, "agent", c.Args[0], "the image's entrypoint is /hearsay; args start with the command")
	flags := parseFlags(t, "statefulset.yaml", c.Args[1:])
	requireAgentAccepts(t, "statefulset.yaml", c.Args[1:])

	type port struct {
		number   int
		protocol string
	}
	ports := map[string]port{}
	for _, p := range c.Ports {
		ports[p.Name] = port{p.ContainerPort, p.Protocol}
	}
	assert.Equal(t, port{atoi(t, portOf(t, "--bind", flags["bind"])), "UDP"}, ports["gossip"], "containerPort gossip is --bind's")
	assert.Equal(t, port{atoi(t, portOf(t, "--api", flags["api"])), "TCP"}, ports["api"], "containerPort api is --api's")
	assert.True(t, net.ParseIP(strings.Split(flags["api"], ":")[0]).IsUnspecified(), "the kubelet probes the pod's IP: --api must listen on it")
	for _, sp := range svc.Ports {
		cp, ok := ports[sp.TargetPort]
		if assert.True(t, ok, "Service port %s targets %q, no port of the container", sp.Name, sp.TargetPort) {
			assert.Equal(t, cp, port{sp.Port, sp.Protocol}, "Service port %s", sp.Name)
		}
	}

	assert.Equal(t, "dns", flags["registry"])
	for _, entry := range strings.Split(flags["join"], ",") {
		host, p, err := net.SplitHostPort(entry)
		require.NoError(t, err, "--join %s", entry)
		assert.True(t, host == svcM.Metadata.Name || strings.HasPrefix(host, svcM.Metadata.Name+"."),
			"--join %s resolves the headless Service %s", entry, svcM.Metadata.Name)
		assert.Equal(t, strconv.Itoa(ports["gossip"].number), p, "--join %s: the gossip port", entry)
	}

	mounts := map[string]string{} // volume name by mount path
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	require.Len(t, sts.VolumeClaimTemplates, 1)
	assert.Equal(t, sts.VolumeClaimTemplates[0].Metadata.Name, mounts[flags["data-dir"]], "--data-dir is the persistent volume's mount")
	secretFile := flags["passphrase-file"]
	secretVolume := mounts[path.Dir(secretFile)]
	found := false
	for _, v := range sts.Template.Spec.Volumes {
		if v.Name == secretVolume && v.Secret != nil {
			for _, item := range v.Secret.Items {
				found = found || item.Path == path.Base(secretFile)
			}
		}
	}
	assert.True(t, found, "--passphrase-file %s is a file of a Secret's volume", secretFile)

	assert.Equal(t, imageUser(t), sts.Template.Spec.SecurityContext.RunAsUser, "runAsUser is the image's USER")

	require.NotNil(t, c.LivenessProbe)
	require.NotNil(t, c.ReadinessProbe)
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	// The kubelet sends no token: the probes' paths must answer without one.
	api := startAgent(t, "--api-token", "a-token-the-probes-do-not-send")
	for _, p := range []*probe{c.LivenessProbe, c.ReadinessProbe} {
		assert.Equal(t, "api", p.HTTPGet.Port, "%s probes the api port", p.HTTPGet.Path)
		status, body := httpGet(t, api+p.HTTPGet.Path)
		assert.Contains(t, []int{http.StatusOK, http.StatusServiceUnavailable}, status,
			"GET %s without a token: %s", p.HTTPGet.Path, body)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}
