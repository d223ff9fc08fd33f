# divlab as a hosted Streamlit app, CPU only.
#   docker build -t divlab .
#   docker run --rm -p 8501:8501 divlab            # then open http://localhost:8501
# Limits (see divlab/limits.py and the README section "Host it") are environment variables:
#   docker run --rm -p 8501:8501 -e DIVLAB_RUN_BUDGET_S=10 -e DIVLAB_MAX_STEPS=1000 divlab
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # one intra-op thread per process: many small tensor programs from concurrent sessions share
    # the cores; OpenMP workers spinning against each other made runs ~7x slower on 2 busy cores
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    DIVLAB_DEVICE=cpu \
    DIVLAB_MAX_STEPS=2000 \
    DIVLAB_MAX_GRID=4097 \
    DIVLAB_MAX_GRID_2D=257 \
    DIVLAB_MAX_PARTICLES=1000 \
    DIVLAB_MAX_BATCH=64 \
    DIVLAB_MAX_SAMPLES=20000 \
    DIVLAB_MAX_UPLOAD_MB=1 \
    DIVLAB_RUN_BUDGET_S=20 \
    # Streamlit's own upload limit in MB, kept equal to DIVLAB_MAX_UPLOAD_MB
    STREAMLIT_SERVER_MAX_UPLOAD_SIZE=1 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false

# a non-root user; uid 1000 is also the user Hugging Face Spaces runs containers as
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin divlab
WORKDIR /home/divlab/app

# CPU-only torch from the PyTorch CPU index (no CUDA libraries: ~200 MB instead of several GB),
# installed first so this layer is cached across code changes
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY divlab ./divlab
COPY assets ./assets
# editable: the lessons in assets/presets are read next to the package
RUN pip install -e . && python -c "import divlab, torch; assert not torch.cuda.is_available(); print(divlab.__version__, torch.__version__)"

COPY app.py ./
COPY pages ./pages
COPY .streamlit ./.streamlit

USER divlab
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).status == 200 else 1)"
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
