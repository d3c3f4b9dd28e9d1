"""policybot: wiring, configuration and the chat-platform adapters around the shared core."""
import os as _os

# Vector maths here is small (a question against ~1,800 clause texts); a multi-threaded BLAS only spins
# against the server's own threads and made one search 13 ms instead of 0.2 ms. Set before numpy loads.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
_os.environ.setdefault("OMP_NUM_THREADS", "1")
