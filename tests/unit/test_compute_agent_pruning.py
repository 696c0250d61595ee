"""The compute agent's pass prunes its driver's image cache on its interval,
and a failed pruning does not stop the pass."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from stratus.compute.agent.driver import DriverError
from stratus.compute.agent.fake import FakeDriver
from stratus.compute.agent.host import HostAgent, ImageCachePruning


class Api:
    def report(self, host: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        return []

    def events(self, host: str, events: list[dict[str, Any]]) -> None:
        pass


class PruningDriver(FakeDriver):
    def __init__(self, path: Path, fail: bool = False):
        super().__init__(path, "h1", 4, 4096, 100)
        self.prunes: list[float] = []
        self.fail = fail

    def prune_image_cache(self, min_age: float) -> list[str]:
        self.prunes.append(min_age)
        if self.fail:
            raise DriverError("libvirtd is not answering")
        return ["an-image"]


def agent(driver: FakeDriver, pruning: ImageCachePruning | None) -> HostAgent:
    return HostAgent("h1", driver, Api(), image_cache=pruning)


def test_the_first_pass_prunes_and_then_every_interval(tmp_path: Path, caplog) -> None:
    driver = PruningDriver(tmp_path / "h1.json")
    host = agent(driver, ImageCachePruning(interval=3600, min_age=86400))
    with caplog.at_level(logging.INFO, logger="stratus.compute.agent"):
        for _ in range(3):
            host.run_once()
    assert driver.prunes == [86400]
    assert "removed unused cached images an-image" in caplog.text
    host._next_prune = 0  # the interval has passed
    host.run_once()
    assert driver.prunes == [86400, 86400]
    host.close()


@pytest.mark.parametrize("pruning", [None, ImageCachePruning(interval=0, min_age=60)])
def test_no_interval_no_pruning(tmp_path: Path, pruning) -> None:
    driver = PruningDriver(tmp_path / "h1.json")
    host = agent(driver, pruning)
    host.run_once()
    assert driver.prunes == []
    host.close()


def test_a_failed_pruning_is_logged_and_the_pass_goes_on(tmp_path: Path, caplog) -> None:
    driver = PruningDriver(tmp_path / "h1.json", fail=True)
    host = agent(driver, ImageCachePruning(interval=60, min_age=60))
    with caplog.at_level(logging.ERROR, logger="stratus.compute.agent"):
        assert host.run_once() == 0
    assert "the image cache was not pruned: libvirtd is not answering" in caplog.text
    host.close()
