"""site/js/keys.js, the page's one table of keyboard shortcuts (its key handling, its help and the README's
Keyboard line come from it): no key is bound twice, each key it lists is what a press of that key is called,
and the README lists exactly its keys. The table is read by node, imported as the browser imports it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYS_JS = ROOT / "site" / "js" / "keys.js"
# What a browser reports as KeyboardEvent.key for the keys the table names otherwise.
KEY_VALUES = {"Esc": "Escape"}


def run_node(script: str):
    """What `script` (an ES module, given keys.js as `keys`) prints, as JSON."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("these tests need Node.js: run `bash tools/setup.sh`, which installs it", pytrace=False)
    module = f"const keys = await import({json.dumps(KEYS_JS.as_uri())});\n{script}"
    result = subprocess.run([node, "--input-type=module", "-e", module], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def press(name: str) -> dict:
    """The keydown event a browser gives for the key the table calls `name` ("Ctrl+Shift+Z", "Esc", "N")."""
    # "+" is a key as well as what joins a combination's keys ("Ctrl++" would be Ctrl and +)
    *modifiers, key = name.split("+") if not name.endswith("+") else [*name[:-1].split("+")[:-1], "+"]
    shift = "Shift" in modifiers
    value = KEY_VALUES.get(key, key.upper() if shift else key.lower())
    return {
        "key": value,
        "ctrlKey": "Ctrl" in modifiers,
        "metaKey": False,
        "shiftKey": shift,
        "altKey": "Alt" in modifiers,
    }


@pytest.fixture(scope="module")
def shortcuts() -> list[dict]:
    return run_node("console.log(JSON.stringify(keys.SHORTCUTS));")


def test_no_key_is_bound_twice_and_each_action_has_one_row(shortcuts):
    keys = Counter(key for row in shortcuts for key in row["keys"])
    assert [key for key, count in keys.items() if count > 1] == []
    actions = Counter(row["action"] for row in shortcuts)
    assert [action for action, count in actions.items() if count > 1] == []
    assert len(keys) >= 12  # the table was read, not an empty one


def test_pressing_each_key_of_the_table_reaches_its_row(shortcuts):
    events = [press(key) for row in shortcuts for key in row["keys"]]
    reached = run_node(f"""
        const events = {json.dumps(events)};
        console.log(JSON.stringify(events.map((event) => {{
          const combo = keys.comboOf(event);
          return [combo, keys.shortcutFor(combo)?.action ?? null];
        }})));""")
    expected = [[key, row["action"]] for row in shortcuts for key in row["keys"]]
    assert reached == expected


def readme_keyboard_line() -> str:
    """The README's Keyboard bullet, its wrapped lines joined."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^- \*\*Keyboard\*\*.*?(?=\n- |\n\n)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "the README has no '- **Keyboard**' bullet"
    return " ".join(match.group(0).split())


def test_the_readme_lists_the_keys_of_the_table(shortcuts):
    def listed(keys: list[str]) -> str:
        names = [f"`{key}`" for key in keys]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

    expected = (
        "- **Keyboard** (listed in the page too): "
        + "; ".join(f"{listed(row['keys'])} {row['does']}" for row in shortcuts)
        + "."
    )
    assert readme_keyboard_line() == expected, f"the README's Keyboard bullet should read:\n{expected}"
