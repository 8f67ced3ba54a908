"""The local AWS emulator: moto's server, answering one request at a time.

`moto_server` answers each request on its own thread and its DynamoDB conditional writes are a
read, a check and a write in Python with nothing held between them: two concurrent
`UpdateItem ... ConditionExpression` calls can both pass a condition only one of them should.
DynamoDB itself applies a conditional write atomically, and the login throttle
(`shared/src/throttle.rs`) relies on that: twenty concurrent guesses must get at most the budget
of answers. Serialising requests here makes the emulator keep the guarantee the code is written
against, so a test of that guarantee fails only when the code breaks it (CI once saw 7 grants
of a budget of 6 from moto's race). Each request is still served on its own thread (HTTP/1.1
keep-alive works as with `moto_server`); only the application call is under the lock.

Usage: aws_emulator.py HOST PORT
"""

import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def serialised(app):
    lock = threading.Lock()

    def call(environ, start_response):
        with lock:
            body = app(environ, start_response)
            try:
                # The whole body is produced under the lock: a lazy body would run the backend
                # after the lock is released.
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()

    return call


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
