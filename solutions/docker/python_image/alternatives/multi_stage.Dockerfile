# Multi-stage: the builder stage makes a virtualenv and installs into it; the final stage copies
# only the finished venv. pip's cache, the wheels and requirements.txt never reach the image.
ARG BASE=python:3.11-slim
FROM ${BASE} AS builder
RUN python3 -m venv /opt/venv
# Only what the install needs: a code change leaves this stage entirely cached.
COPY requirements.txt /build/requirements.txt
COPY wheels/ /build/wheels/
RUN /opt/venv/bin/pip install --no-cache-dir --no-index --find-links=/build/wheels -r /build/requirements.txt

FROM ${BASE}
# The same base, so the venv's python symlink points at an interpreter that is there.
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /srv/app
COPY app/ ./
# A numeric uid needs no passwd entry: the kernel only knows numbers.
USER 10001:10001
EXPOSE 8000
# CMD-SHELL form; the check fails on anything but a 200 (urlopen raises on 4xx and 5xx).
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
    CMD python -c "import sys, urllib.request as u; sys.exit(u.urlopen('http://localhost:8000/health', timeout=2).status != 200)"
CMD ["python", "main.py"]
