# dualtalk serve in a container: the service on all interfaces of the container, two workers, the shipped
# streaming model; the token comes from the environment (without one the service refuses to start on a
# non-loopback address). docs/serve.md, "In a container".
#
#   docker build -t dualtalk-serve .
#   docker run --rm -p 8000:8000 -e DUALTALK_TOKEN=s3cret dualtalk-serve
#   docker run --rm -p 8000:8000 -e DUALTALK_TOKEN=s3cret -v $PWD/models:/models dualtalk-serve \
#       dualtalk serve --model /models/my-stream-model --host 0.0.0.0 --workers 2
FROM python:3.11-slim

# the CPU build of PyTorch (the default wheel index would bring CUDA libraries)
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir ".[serve]" && rm -rf /src

# not root
RUN useradd --create-home --uid 10001 dualtalk
USER dualtalk
WORKDIR /home/dualtalk

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import os, urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8000/healthz', headers={'Authorization': 'Bearer ' + os.environ.get('DUALTALK_TOKEN', '')}), timeout=4)"
CMD ["dualtalk", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
