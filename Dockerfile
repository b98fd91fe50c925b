# One image for every service of the class topology (web, worker-gpu, worker-cpu).
# torch from PyPI on Linux x86_64 is a CUDA build: the GPU workers use it, the CPU ones simply
# see no GPU. (The laptop default pins the CPU build through `make`.)

# Plotly's cartesian bundle, as `make setup` installs it (`npm ci`, the version pinned in
# package-lock.json). The Python image has no npm: a node stage installs it, the image copies it.
FROM node:20-slim AS plotly
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PEFTLAB_VAR_DIR=/var/lib/peftlab
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=plotly /app/node_modules ./node_modules
RUN python manage.py collectstatic --noinput --verbosity 0
EXPOSE 8000
CMD ["python", "manage.py", "lab", "web"]
