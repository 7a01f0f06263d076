package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// systemdRootfsEnv names a Debian root file system with systemd (built by
// debootstrap in .ci/run) that TestSystemdUnitBoots boots in a container.
const systemdRootfsEnv = "HEARSAY_SYSTEMD_ROOTFS"

// The unit and its files, installed as docs/deploy.md says, run the agent
// under a real systemd: as the dedicated user with no capabilities, its
// state directory and the passphrase credential; systemctl reload sends
// SIGHUP; a killed agent is restarted; a mistake in the config file
// (exit status 2) is not.
func TestSystemdUnitBoots(t *testing.T) {
	requireDockerEngine(t)
	rootfs := os.Getenv(systemdRootfsEnv)
	if rootfs == "" {
		t.Skipf("set %s to a Debian root file system with systemd (.ci/run builds one with debootstrap)", systemdRootfsEnv)
	}
	_, err := os.Stat(filepath.Join(rootfs, "lib", "systemd", "systemd"))
	require.NoError(t, err, "%s=%s: no systemd there", systemdRootfsEnv, rootfs)

	base := "hearsay-test-systemd-base:" + randomHex(t, 6)
	image := "hearsay-test-systemd:" + randomHex(t, 6)
	t.Cleanup(func() {
		for _, tag := range []string{image, base} {
			if out, err := tryRun(time.Minute, nil, "docker", "rmi", "-f", tag); err != nil {
				t.Logf("docker rmi %s: %v %s", tag, err, out)
			}
		}
	})
	run(t, 5*time.Minute, nil, "sh", "-c", `tar -C "$1" -c . | docker import - "$2"`, "sh", rootfs, base)

	// The install steps of docs/deploy.md, the config file's join made a
	// name the container resolves.
	dir := t.TempDir()
	copyFile(t, hearsayBinary(t), filepath.Join(dir, "hearsay"))
	for _, f := range []string{"hearsay.service", "hearsay.sysusers", "hearsay.yaml"} {
		copyFile(t, filepath.Join("systemd", f), filepath.Join(dir, f))
	}
	dockerfile := "FROM " + base + "\n" +
		"COPY hearsay hearsay.service hearsay.sysusers hearsay.yaml /tmp/install/\n" +
		"RUN cd /tmp/install && install -m 0755 hearsay /usr/local/bin/hearsay" +
		" && install -m 0644 hearsay.sysusers /usr/lib/sysusers.d/hearsay.conf" +
		" && install -d -m 0755 /etc/hearsay" +
		" && sed 's/hearsay.example.internal:7600/localhost:7600/' hearsay.yaml > /etc/hearsay/hearsay.yaml" +
		" && (umask 077; hearsay keygen > /etc/hearsay/passphrase)" +
		" && install -m 0644 hearsay.service /etc/systemd/system/" +
		" && systemctl enable hearsay && rm -r /tmp/install\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644))
	run(t, 5*time.Minute, nil, "docker", "build", "-q", "-t", image, dir)

	args := []string{"run", "-d", "--network", "none", "--tmpfs", "/run", "--tmpfs", "/run/lock"}
	if out, _ := tryRun(time.Minute, nil, "stat", "-fc", "%T", "/sys/fs/cgroup"); strings.TrimSpace(out) != "cgroup2fs" {
		args = append(args, "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro") // cgroup v1: systemd needs the hierarchy
	}
	container := strings.TrimSpace(run(t, time.Minute, nil, "docker", append(args, image, "/lib/systemd/systemd")...))
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := tryRun(time.Minute, nil, "docker", "exec", container, "journalctl", "-u", "hearsay", "--no-pager", "-n", "30")
			t.Logf("journalctl -u hearsay:\n%s", out)
		}
		if out, err := tryRun(time.Minute, nil, "docker", "rm", "-f", "-v", container); err != nil {
			t.Logf("docker rm %s: %v %s", container, err, out)
		}
	})
	exec := func(args ...string) (string, error) {
		out, err := tryRun(time.Minute, nil, "docker", append([]string{"exec", container}, args...)...)
		return strings.TrimSpace(out), err
	}
	show := func(property string) string {
		out, err := exec("systemctl", "show", "hearsay", "--value", "-p", property)
		require.NoError(t, err)
		return out
	}
	waitHealthy := func(what string) {
		require.Eventually(t, func() bool {
			_, err := exec("hearsay", "health")
			return err == nil
		}, time.Minute, 200*time.Millisecond, "%s: hearsay health", what)
	}

	waitHealthy("boot")
	assert.Equal(t, "active", show("ActiveState"))
	uid, err := exec("id", "-u", "hearsay")
	require.NoError(t, err, "systemd-sysusers made the user")
	pid := show("MainPID")
	procStatus, err := exec("cat", "/proc/"+pid+"/status")
	require.NoError(t, err)
	for _, want := range []string{"Uid:\t" + uid + "\t", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"} {
		assert.Contains(t, procStatus, want, "the agent's /proc/PID/status")
	}
	state, err := exec("stat", "-c", "%U %a", "/var/lib/hearsay")
	require.NoError(t, err)
	assert.Equal(t, "hearsay 700", state, "the state directory")
	status, err := exec("hearsay", "status")
	require.NoError(t, err)
	assert.Contains(t, status, `"encrypted": true`, "the credential's passphrase is in use")

	_, err = exec("systemctl", "reload", "hearsay")
	require.NoError(t, err, "systemctl reload")
	require.Eventually(t, func() bool {
		out, _ := exec("journalctl", "-u", "hearsay", "--no-pager", "-o", "cat")
		return strings.Contains(out, "SIGHUP")
	}, time.Minute, 200*time.Millisecond, "the agent logs the SIGHUP of systemctl reload")

	_, err = exec("systemctl", "kill", "-s", "KILL", "hearsay")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return show("NRestarts") == "1" && show("MainPID") != pid },
		time.Minute, 200*time.Millisecond, "systemd restarts a killed agent")
	waitHealthy("after the restart")

	_, err = exec("sh", "-c", "echo 'no-such-key: 1' >> /etc/hearsay/hearsay.yaml")
	require.NoError(t, err)
	_, err = exec("systemctl", "restart", "hearsay")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return show("ActiveState") == "failed" },
		time.Minute, 200*time.Millisecond, "a bad config file stops the agent for good")
	assert.Equal(t, "2", show("ExecMainStatus"))
	assert.Equal(t, "0", show("NRestarts"), "no restart after exit status 2")
	journal, _ := exec("journalctl", "-u", "hearsay", "--no-pager", "-o", "cat")
	assert.Contains(t, journal, `unknown key "no-such-key"`)
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	info, err := os.Stat(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, info.Mode().Perm()))
}
