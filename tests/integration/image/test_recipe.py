"""The golden-image recipe shares its install steps with every other path, and its scripts
and user-data pass the real validators (cloud-init schema, shellcheck)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from cloud_init import layout as L
from cloud_init.packages import packages_for_image
from cloud_init.render import render_install_script
from cloud_init.validate import validate_script, validate_user_data
from fatctl.errors import BadInput
from fatctl.sandbox.image import image_packages
from fatctl.services.agents.material import generate_host_key
from fatctl.services.image.recipe import (
    PACKAGES_SCRIPT,
    GoldenRecipe,
    builder_name,
    builder_user_data,
    cleanup_command,
    golden_selector,
    packages_script,
)
from tests.integration.engines.conftest import OP_KEY


@pytest.mark.parametrize("base", ["debian-12", "debian-13", "ubuntu-24.04"])
def test_builder_user_data_is_valid_and_carries_the_shared_steps(base: str) -> None:
    recipe = GoldenRecipe("2026.9.5", "24.21.0", base_image=base)
    text = builder_user_data(recipe, OP_KEY, generate_host_key("b").pair)
    assert validate_user_data(text) == []
    files = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
    assert files[L.INSTALL_SCRIPT] == render_install_script("2026.9.5", "24.21.0")
    assert files[PACKAGES_SCRIPT] == packages_script(base)


def test_packages_script_installs_exactly_the_box_packages() -> None:
    script = packages_script("ubuntu-24.04")
    assert validate_script(script, "packages") == []
    listed = script.split("for pkg in ", 1)[1].split("; do", 1)[0].split()
    assert tuple(listed) == packages_for_image("ubuntu-24.04")
    # The sandbox's golden image has at least these, from the same list.
    assert set(packages_for_image("debian-12")) <= set(image_packages())


def test_cleanup_is_valid_sh_and_seed_removal_is_optional() -> None:
    for seed in (True, False):
        text = cleanup_command(clean_seed=seed)
        assert subprocess.run(["sh", "-n", "-c", text], check=False).returncode == 0
        assert ("--seed" in text) is seed


def test_names_labels_and_bad_input() -> None:
    recipe = GoldenRecipe("2026.9.6", "24.21.0", server_type="cax11")
    assert recipe.architecture == "arm"
    assert builder_name(recipe, "20261121") == "fatctl-image-2026-9-6-20261121"
    assert str(golden_selector("2026.9.6", "debian-12")) == (
        "managed-by=fatctl,role=golden,runtime=2026.9.6,base=debian-12"
    )
    assert str(golden_selector()) == "managed-by=fatctl,role=golden"
    with pytest.raises(BadInput, match="runtime version"):
        GoldenRecipe("2026.9.6 && reboot", "24.21.0")
    with pytest.raises(BadInput, match="server type"):
        GoldenRecipe("2026.9.6", "24.21.0", server_type="cx999")
    with pytest.raises(BadInput, match="location"):
        GoldenRecipe("2026.9.6", "24.21.0", location="mars")
    with pytest.raises(BadInput, match="base image"):
        GoldenRecipe("2026.9.6", "24.21.0", base_image="../etc")
