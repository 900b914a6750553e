#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""sendmail-shim's file list: what the package installs, where (from the layout) and with which modes.

debian/rules runs it; a spec file's %install could run it the same way.

    install-tree.py install DESTDIR LAUNCHER   install every file under DESTDIR (LAUNCHER: the built binary)
    install-tree.py render TEMPLATE            print TEMPLATE with its @key@ tokens filled from the layout
    install-tree.py value TOKEN                print one token's value (debian/rules names units with it)

Tokens are the layout's top-level keys, listener_service_glob (its running instances),
recorder_socket_dir (the directory of recorder_socket_path), alternative_name,
_link, _priority and _slaves (update-alternatives --slave arguments), and maintainer_functions
(files/package/maintainer.sh.in, itself rendered).
"""

import json
import re
import shutil
import sys
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
SHIM = REPO / "files" / "sendmail_shim"
TEMPLATES = REPO / "files" / "package"
LAYOUT = json.loads((SHIM / "layout.json").read_text())
TOKEN = re.compile(r"@([a-z_]+)@")


def tokens():
    alternative = LAYOUT["alternative"]
    values = {key: str(value) for key, value in LAYOUT.items() if not isinstance(value, dict)}
    values["listener_service_glob"] = LAYOUT["listener_service"].replace("@.", "@*.")
    values["recorder_socket_dir"] = str(PurePosixPath(LAYOUT["recorder_socket_path"]).parent)
    values["alternative_name"] = alternative["name"]
    values["alternative_link"] = alternative["link"]
    values["alternative_priority"] = str(alternative["priority"])
    values["alternative_slaves"] = " ".join(
        f"--slave {slave['link']} {slave['name']} {LAYOUT['launcher']}" for slave in alternative["slaves"]
    )
    return values


def render(template):
    values = tokens()

    def fill(match):
        key = match.group(1)
        if key == "maintainer_functions":
            return render(TEMPLATES / "maintainer.sh.in").rstrip("\n")
        if key not in values:
            raise SystemExit(f"install-tree: {template}: unknown token @{key}@")
        return values[key]

    return TOKEN.sub(fill, Path(template).read_text())


def place(destdir, path, mode, text=None, source=None):
    target = destdir / path.lstrip("/")
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, target)
    else:
        target.write_text(text)
    target.chmod(mode)


def install(destdir, launcher):
    destdir = Path(destdir)
    package_dir = LAYOUT["libdir"] + "/sendmail_shim"
    for source in [*sorted(SHIM.glob("*.py")), SHIM / "layout.json"]:
        place(destdir, f"{package_dir}/{source.name}", 0o644, source=source)
    place(destdir, LAYOUT["launcher"], 0o755, source=launcher)
    place(destdir, LAYOUT["admin_command"], 0o755, render(TEMPLATES / "admin-command.in"))
    place(destdir, LAYOUT["config"], 0o644, render(TEMPLATES / "sendmail-shim.conf.in"))
    (destdir / LAYOUT["config_dir"].lstrip("/")).mkdir(mode=0o755, parents=True, exist_ok=True)
    place(destdir, LAYOUT["logrotate"], 0o644, render(TEMPLATES / "logrotate.in"))
    units = LAYOUT["systemd_unit_dir"]
    place(destdir, f"{units}/{LAYOUT['listener_socket']}", 0o644, render(TEMPLATES / "listener.socket.in"))
    place(destdir, f"{units}/{LAYOUT['listener_service']}", 0o644, render(TEMPLATES / "listener.service.in"))
    place(destdir, f"{units}/{LAYOUT['recorder_socket']}", 0o644, render(TEMPLATES / "recorder.socket.in"))
    place(destdir, f"{units}/{LAYOUT['recorder_service']}", 0o644, render(TEMPLATES / "recorder.service.in"))


def main(argv):
    if len(argv) == 3 and argv[0] == "install":
        install(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "render":
        sys.stdout.write(render(argv[1]))
    elif len(argv) == 2 and argv[0] == "value" and argv[1] in tokens():
        print(tokens()[argv[1]])
    else:
        sys.stderr.write(__doc__)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
