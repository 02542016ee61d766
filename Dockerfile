# Builds tsns and runs its test suite; namespaces need `docker run --privileged`.
FROM node:20-bookworm
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev libseccomp-dev libseccomp2 util-linux procps iproute2 uidmap tmux iputils-ping bubblewrap podman runc busybox-static \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tsns
COPY . .
RUN npm ci --no-audit --no-fund
ENV CI=true
CMD ["npm", "test"]
