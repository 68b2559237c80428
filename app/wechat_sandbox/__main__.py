"""`python -m app.wechat_sandbox --port N [--state FILE]`: the sandbox without building the main app."""
import argparse

from app.wechat_sandbox import create_sandbox_app
from app.wechat_sandbox.cli import run_sandbox


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m app.wechat_sandbox")
    parser.add_argument("--port", type=int, default=5099)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state", default=None)
    args = parser.parse_args(argv)
    config = {"SANDBOX_STATE": args.state} if args.state else {}
    run_sandbox(create_sandbox_app(config), args.host, args.port)


if __name__ == "__main__":
    main()
