# One stage, the packages installed system-wide, the server started by waitress' own command
# line (ENTRYPOINT) with the WSGI callable as its argument (CMD), run as the base's `nobody`.
ARG BASE=python:3.11-slim
FROM ${BASE}

# Dependencies first, from a folder of their own: the code's COPY comes later.
WORKDIR /deps
COPY requirements.txt wheels/ ./
RUN pip install --no-cache-dir --no-index --find-links=. -r requirements.txt

WORKDIR /app
COPY app/main.py ./
# nobody (65534) exists in every Debian image and owns nothing.
USER nobody
EXPOSE 8000
HEALTHCHECK --interval=1s --start-period=20s \
    CMD ["python3", "-c", "from urllib.request import urlopen; urlopen('http://127.0.0.1:8000/health', timeout=1)"]
ENTRYPOINT ["waitress-serve", "--listen=0.0.0.0:8000"]
CMD ["main:app"]
