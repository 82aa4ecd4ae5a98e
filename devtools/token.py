"""`make token ROLE=agent SERVICE=urbanisme`: print a development agent token, and only the token.

    TOKEN=$(make -s token ROLE=supervisor SERVICE=urbanisme,voirie)
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8002/...

Signed by the development issuer that `make run` creates in .data/dev-issuer/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devtools import dev_issuer
from shared.procedures import CatalogueError, Role, load_catalogue
from shared.settings import DEFAULT_PROCEDURES_DIR, REPO_ROOT

DEFAULT_DATA_DIR = REPO_ROOT / ".data" / "dev-issuer"
AGENT_ROLES = [r.value for r in Role if r is not Role.CITIZEN]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools.token", description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=AGENT_ROLES, default=Role.AGENT.value)
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        metavar="CODE[,CODE]",
        help="a service whose cases the agent handles (repeat it, or separate codes with commas)",
    )
    parser.add_argument("--agent", help="the agent id (`sub`); default agent-<role>-<services>")
    parser.add_argument("--minutes", type=int, default=480, help="how long the token is valid (default 480)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help=argparse.SUPPRESS)
    return parser


def _known_services() -> set[str] | None:
    try:
        return {p.service for p in load_catalogue(DEFAULT_PROCEDURES_DIR).all_latest()}
    except CatalogueError:
        return None  # a procedure file being edited must not stop anyone from getting a token


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    services = sorted({code.strip() for value in args.service for code in value.split(",") if code.strip()})
    if not services and args.role != Role.ADMIN:
        parser.error("give --service: an agent only sees the cases of its services (admin sees all)")
    known = _known_services()
    if known is not None and (unknown := [s for s in services if s not in known]):
        parser.error(f"unknown service {', '.join(unknown)}; the procedures name: {', '.join(sorted(known))}")
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    try:
        token = dev_issuer.issue(
            args.data_dir, role=args.role, services=services, agent=args.agent, minutes=args.minutes
        )
    except dev_issuer.NoDevIssuerKeys as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
