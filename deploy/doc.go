// Package deploy holds no code: it is the home of the deployment files
// (compose.yaml, systemd/, kubernetes/, grafana/, the image's data
// directory) and of the tests that hold them to the binary: every flag
// they give exists in `hearsay agent --help`, every port and probe agrees
// with the flags, every metric the dashboard queries is exported, and the
// compose cluster converges, heals and restarts on a real Docker engine.
// docs/deploy.md describes the files.
package deploy
