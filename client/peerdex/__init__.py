"""The peerdex client, one module per job.

    wire        framing of fields, the reply reader, the list replies
    timeclient  the embedded time web service and the client that asks it
    peer        the peer file server (GET_FILE for our published files)
    download    the downloader (GET_FILE from another peer)
    cli         the c> command line

`client/client.py` is the entry point.  See docs/client.md.
"""
