# Builds tsns and runs its test suite; namespaces need `docker run --privileged`.
FROM node:20-bookworm
WORKDIR /opt/tsns
# The system tools the build and the tests need: the one list is scripts/test-setup.cjs.
COPY scripts/test-setup.cjs scripts/
RUN node scripts/test-setup.cjs && rm -rf /var/lib/apt/lists/*
COPY . .
RUN npm ci --no-audit --no-fund
ENV CI=true
CMD ["npm", "test"]
