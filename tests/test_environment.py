"""The suite leaves the user's environment as it found it (conftest's environment_untouched
fixture checks this at the end of every session); here, that its check can see a change."""

from __future__ import annotations

import sys


def test_the_package_check_sees_a_new_install(tmp_path, installed_packages):
    site = tmp_path / "site-packages"
    info = site / "surprise_pkg-9.9.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: surprise-pkg\nVersion: 9.9\n")
    before = installed_packages(sys.path)
    after = installed_packages([str(site), *sys.path])
    assert "surprise-pkg" not in before
    assert after["surprise-pkg"] == "9.9" and after != before
