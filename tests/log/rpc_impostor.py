"""An impostor on the log server's port: any local process can be one while
the real log server is down.  It speaks ONC-RPC well enough and answers every
call SUCCESS with zero bytes, which read as LOG_OK (and an all-zero nonce or
MAC).  Prints its port, then `call <proc>` for each call it answers.

    rpc_impostor.py PORT        (0: any free port)
"""
import socket
import struct
import sys
import threading

LAST = 0x80000000


def serve(conn):
    with conn:
        while True:
            record = b""
            while True:
                head = conn.recv(4, socket.MSG_WAITALL)
                if len(head) < 4:
                    return
                (m,) = struct.unpack(">I", head)
                record += conn.recv(m & ~LAST, socket.MSG_WAITALL)
                if m & LAST:
                    break
            xid, _, _, _, _, proc = struct.unpack(">IIIIII", record[:24])
            # REPLY, MSG_ACCEPTED, AUTH_NONE verifier, SUCCESS, then zeros.
            body = struct.pack(">IIIIII", xid, 1, 0, 0, 0, 0) + b"\0" * 36
            conn.sendall(struct.pack(">I", LAST | len(body)) + body)
            print("call %d" % proc, flush=True)


def main():
    lst = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print(lst.getsockname()[1], flush=True)
    while True:
        conn, _ = lst.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
