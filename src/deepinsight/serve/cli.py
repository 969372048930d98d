"""``python -m deepinsight.serve ckpt=PATH [port=8000] [host=127.0.0.1] ...`` (conf/serve.yaml)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence

from deepinsight.cli import compose_command_config, run_command
from deepinsight.errors import EXIT_OK
from deepinsight.serve.app import ServeOptions, accelerator, build_server, model_info

USAGE = """
usage: python -m deepinsight.serve ckpt=PATH [host=127.0.0.1] [port=8000] [key=value ...]
       deepinsight-serve ckpt=model.onnx port=9000 max_batch_size=32

Serves a trained detector: POST /predict (an image; ?cam=true for a heatmap), GET /info,
GET /health, and a web page at /. Stop it with Ctrl+C.
"""
CONFIG_NAME = "serve"


def run(argv: Sequence[str]) -> int:
    options = ServeOptions(**compose_command_config(CONFIG_NAME, argv))
    info = model_info(options.ckpt)  # a model that cannot be loaded stops here, in one line
    server = build_server(options, info)
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
    )
    print(
        f"serving {info['model']} ({info['file']}) at http://{options.host}:{options.port}/ "
        f"(threshold {info['threshold']:.4f}, device {accelerator(options, info)})",
        flush=True,
    )
    stop_on_sigterm()
    server.run(
        host=options.host,
        port=options.port,
        log_level="warning",
        generate_client_file=False,
        num_api_servers=1,
    )
    return EXIT_OK


def stop_on_sigterm() -> None:
    """SIGTERM (``kill``, ``docker stop``, systemd) shuts down like Ctrl+C, workers included.

    LitServe's shutdown of its worker and API-server processes runs on KeyboardInterrupt only;
    a plain SIGTERM would end the main process and leave those serving on the port. Processes it
    forks inherit this handler, so it acts in the main process only.
    """
    main_pid = os.getpid()

    def stop(signum: int, frame: object) -> None:
        if os.getpid() != main_pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def main(argv: Sequence[str] | None = None) -> None:
    run_command(run, argv, USAGE, CONFIG_NAME)


if __name__ == "__main__":
    main()
