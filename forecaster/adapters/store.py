"""Keep the last good forecast on a filesystem (a volume shared with the controller, or ``out/`` locally).

A reader must never see half a file and a failed run must never replace a good forecast, so
:meth:`FileStore.write` validates the artifact, writes it to a temporary file in the same directory, fsyncs
it and renames it over the old one (atomic on POSIX), then fsyncs the directory. Anything that goes wrong
before the rename leaves the previous forecast exactly as it was; a temporary file a killed run left behind
is removed by the next write (:mod:`forecaster.tempfiles`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forecaster.artifact import ForecastArtifact
from forecaster.errors import ConfigError, StoreError
from forecaster.tempfiles import remove_stale

if TYPE_CHECKING:
    from forecaster.job.config import StoreConfig
    from forecaster.ports import ForecastStore


class FileStore:
    """Implements ``forecaster.ports.ForecastStore`` as one JSON file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return f"file {self.path}"

    def write(self, artifact: ForecastArtifact) -> None:
        """Validate, then atomically replace the stored forecast. Raises StoreError; the old file survives."""
        try:
            text = artifact.to_json()  # validates: a broken artifact is never written
        except StoreError as exc:
            raise StoreError(f"{self.path}: refusing to write an invalid forecast ({exc})") from None
        directory = self.path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create directory {directory} ({exc.strerror})") from None
        remove_stale(directory, self.path.name)  # left by a run killed between write and rename
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)  # readable by a controller running as another user
            os.replace(tmp, self.path)
            tmp = None
            _fsync_dir(directory)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot write forecast ({exc.strerror or exc}); the previous forecast was kept"
            ) from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def read(self) -> ForecastArtifact | None:
        """The stored forecast, None when none was ever written; StoreError when unreadable or invalid."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read forecast ({exc.strerror})") from None
        return ForecastArtifact.from_json(text, where=str(self.path))


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (best effort: not every filesystem allows opening a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_store(
    store: StoreConfig,
    *,
    api_client: Any | None = None,
    default_namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> ForecastStore:
    """The forecast store a ``store`` section names: the job writes and the controller reads through it.

    A ConfigMap store uses ``api_client`` when given (the controller's), else credentials from
    ``store.configmap.kubeconfig`` / in-cluster; an unset namespace is ``default_namespace``, else the pod's
    own namespace (:func:`forecaster.adapters.kube.pod_namespace`), so job and controller agree on the
    ConfigMap. ``labels`` are the ones a reader selects the ConfigMap by (see
    :class:`forecaster.adapters.configmap_store.ConfigMapDocument`).
    """
    if store.kind == "file":
        assert store.file is not None
        return FileStore(store.file.path)
    from kubernetes import client

    from forecaster.adapters.configmap_store import ConfigMapStore
    from forecaster.adapters.kube import load_api_client, pod_namespace

    cm = store.configmap
    assert cm is not None
    if api_client is None:
        advice = "run in a pod with a service account or set store.configmap.kubeconfig"
        try:
            api_client = load_api_client(cm.kubeconfig, cm.context, advice=advice)
        except ConfigError as exc:
            raise ConfigError(f"store.configmap: {exc}") from None
    namespace = cm.namespace or default_namespace or pod_namespace()
    return ConfigMapStore(client.CoreV1Api(api_client), namespace, cm.name, cm.key, labels=labels)
