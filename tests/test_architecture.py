"""The architecture stays easy to see: services never import each other, and every message a person can
read exists in every language."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = re.compile(r"""["']((?:error|field|auth|workflow|page|history|turn|notify)\.[a-z_]+)["']""")


def test_services_never_import_each_other_and_shared_never_imports_a_service() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_message_key_the_code_uses_exists_in_every_language() -> None:
    used = {
        key
        for path in [
            *ROOT.glob("services/**/*.py"),
            *ROOT.glob("shared/**/*.py"),
            *ROOT.glob("services/**/*.html"),
        ]
        for key in KEY.findall(path.read_text(encoding="utf-8"))
    }
    assert len(used) > 30
    for catalogue in sorted((ROOT / "shared" / "locales").glob("*.json")):
        known = json.loads(catalogue.read_text(encoding="utf-8"))
        missing = sorted(k for k in used if k not in known and not k.endswith("_"))
        assert not missing, f"{catalogue.name} lacks {missing}"
