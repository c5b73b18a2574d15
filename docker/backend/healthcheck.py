"""Container healthcheck: healthy only when /health/ready says the database and Redis answer.

Python's standard library is all the image is sure to have (no curl in slim images).
"""

import os
import sys
import urllib.error
import urllib.request

PORT = os.environ.get("PERFWATCH_PORT", "8000")

try:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health/ready", timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except urllib.error.HTTPError as error:  # 503: a dependency is down; the body says which
    print(error.read().decode(errors="replace")[:500])
    sys.exit(1)
except OSError as error:
    print(f"not answering: {error}")
    sys.exit(1)
