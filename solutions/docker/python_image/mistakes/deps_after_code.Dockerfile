# An image for the web app in app/ (served by waitress on port 8000); see README.md for the contract.
# The tests build it without network: requirements.txt, wheels/ (the wheels it needs) and app/ are
# in the build context, and BASE is passed as a build argument.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The user is created early, in its own small layer; root keeps owning the code and packages.
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin appuser

# Mistake: the code is copied before the dependencies are installed.
WORKDIR /app
COPY app/ /app/
COPY requirements.txt /tmp/requirements.txt
COPY wheels/ /tmp/wheels/
RUN pip install --no-cache-dir --no-index --find-links=/tmp/wheels -r /tmp/requirements.txt

# The process runs as appuser and can only read the code: a breach cannot rewrite the app.
USER appuser
EXPOSE 8000
# The slim image has no curl or wget: ask with the Python that is there.
HEALTHCHECK --interval=2s --timeout=2s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=1)"]
# Exec form: python is PID 1 (or the child of --init) and receives the signals docker sends.
CMD ["python3", "main.py"]
