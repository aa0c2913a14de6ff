# autorollback operator image. Build: docker build -t autorollback:0.1.0 .
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator ./operator
COPY hack/install-venv.sh ./hack/
RUN ./hack/install-venv.sh /opt/autorollback /src operator

FROM python:3.11.14-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="autorollback" \
      org.opencontainers.image.description="Automatic rollback of failed Kubernetes Deployment rollouts" \
      org.opencontainers.image.source="https://github.com/autorollback/autorollback" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH="/opt/autorollback/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# git performs the reverts of "Roll forward through Git" (the reference `git revert`).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u3 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/autorollback /opt/autorollback
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["autorollback", "run"]
CMD ["--all-namespaces"]
