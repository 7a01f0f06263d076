# The hearsay image: the static binary and nothing else. Build the binary
# first, then the image (nothing is pulled: FROM scratch needs no registry):
#
#   CGO_ENABLED=0 go build -o dist/hearsay ./cmd/hearsay
#   docker build -t hearsay .
#
# docs/deploy.md describes the image, its defaults and the compose cluster.
FROM scratch

# 65532 is the uid distroless images use for "nonroot"; scratch has no
# /etc/passwd, so the user is numeric.
COPY --chown=65532:65532 deploy/image/data/ /data/
COPY dist/hearsay /hearsay

USER 65532:65532
VOLUME ["/data"]
# 7600/udp gossip, 7601/tcp the HTTP API.
EXPOSE 7600/udp 7601/tcp

# `hearsay health` asks /healthz on 127.0.0.1:7601 and gives up after its
# own 5 s with a one-line reason, before Docker's 10 s timeout (it carries
# HEARSAY_API_TOKEN if the container's environment sets one).
HEALTHCHECK --interval=10s --timeout=10s --start-period=5s --retries=3 \
	CMD ["/hearsay", "health"]

ENTRYPOINT ["/hearsay"]
# Container defaults: gossip on every interface, the API on every interface
# too (so that published ports reach it, and `hearsay status` inside the
# container reaches it on 127.0.0.1), the node's state in the volume.
CMD ["agent", "--bind", "0.0.0.0:7600", "--api", "0.0.0.0:7601", "--data-dir", "/data"]
