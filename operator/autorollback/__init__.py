"""autorollback: automatic rollback of failed Deployment rollouts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("autorollback")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
