# dsr service image: `dsr serve` in front of the cluster named by DSR_ENGINE_URL.
FROM python:3.11-slim
WORKDIR /app
ENV HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir .
EXPOSE 9400
# Models and the sidecar live in /data (mount them); the index name comes from DSR_INDEX.
CMD ["sh", "-c", "dsr --engine \"$DSR_ENGINE_URL\" --data-dir /data serve --index \"$DSR_INDEX\" --host 0.0.0.0 --port 9400 ${DSR_SERVE_ARGS}"]
