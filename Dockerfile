# The agent in simulator mode: a small image, run as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY device device
COPY bridge bridge
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --system --home-dir /var/lib/legwave --create-home --shell /usr/sbin/nologin legwave
USER legwave
ENV LEGWAVE_STATE_DIR=/var/lib/legwave PYTHONDONTWRITEBYTECODE=1
# Healthy while the agent answers online: connected to the broker, its control loop ticking.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["legwave", "health"]
ENTRYPOINT ["legwave"]
CMD ["run"]
