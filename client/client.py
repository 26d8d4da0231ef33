"""peerdex client: the c> command line, the peer file server and the downloader.

    python3 client/client.py -s SERVER -p PORT [--time-url URL] [-v]

Every index operation opens one TCP connection to the index server, sends the
operation name, the date-time from the time web service and its fields (each
NUL-terminated), and reads the one-byte result (plus, for the lists, the
NUL-terminated data).  While a user is connected, a listener serves that user's
published files to other peers (GET_FILE).  The code is in the package
client/peerdex/ (one module per job); this file is the entry point.  See
docs/client.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peerdex.cli import main  # noqa: E402
from peerdex.timeclient import TimeClient, TimeService  # noqa: E402  (bench/ uses these)

__all__ = ["main", "TimeClient", "TimeService"]

if __name__ == "__main__":
    sys.exit(main())
