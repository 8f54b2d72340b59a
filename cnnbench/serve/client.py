"""Uploading predictions to a ``cnnbench serve`` server (``cnnbench submit --server URL``).

Standard library only (urllib): a multipart/form-data POST with the token as a Bearer header.
The server's refusals come back as one-line errors carrying its message and status.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import CnnbenchError, FormatError, ParamError

TOKEN_ENV = "CNNBENCH_TOKEN"
TIMEOUT_S = 120.0


class ServerError(CnnbenchError):
    """The server refused the request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _multipart(fields: dict[str, str], file_field: str, path: Path) -> tuple[bytes, str]:
    boundary = "cnnbench-" + secrets.token_hex(16)
    parts = []
    for key, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode()
                     + value.encode("utf-8") + b"\r\n")
    name = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(url: str, token: str | None = None, data: bytes | None = None, content_type: str | None = None,
            method: str | None = None) -> dict:
    headers = {"Accept": "application/json", "User-Agent": "cnnbench"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read().decode("utf-8")).get("error") or exc.reason
        except (ValueError, AttributeError, OSError):
            message = exc.reason
        raise ServerError(f"server refused ({exc.code}): {message}", exc.code) from None
    except urllib.error.URLError as exc:
        raise ServerError(f"cannot reach {url}: {exc.reason}") from None
    except (TimeoutError, ConnectionError) as exc:
        raise ServerError(f"cannot reach {url}: {exc}") from None
    except ValueError:
        raise ServerError(f"{url}: the answer is not JSON (is this a cnnbench server?)") from None


def submit_remote(server: str, token: str | None, board: str, predictions, name: str, notes: str = "",
                  params: int | None = None) -> dict:
    """Upload a predictions file to ``server``'s board; return the server's JSON answer."""
    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise ParamError(f"server needs a token: token=TOKEN or ${TOKEN_ENV}")
    parsed = urllib.parse.urlparse(server)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ParamError(f"server {server!r}: expected a URL such as http://host:8000")
    path = Path(predictions)
    if not path.is_file():
        raise FormatError(f"{path}: no such file")
    fields = {"name": name, "description": notes or ""}
    if params is not None:
        fields["params"] = str(params)
    body, content_type = _multipart(fields, "file", path)
    url = f"{server.rstrip('/')}/api/boards/{urllib.parse.quote(board, safe='')}/submissions"
    return request(url, token, body, content_type, "POST")


def print_remote(server, token, board, predictions, name, notes, params, as_json) -> None:
    """``cnnbench submit --server``: upload, then print the public-part score and rank."""
    import click

    answer = submit_remote(server, token, board, predictions, name, notes, params)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    shown = ", ".join(f"{k} {v:.4f}" for k, v in answer.get("public", {}).items())
    click.echo(f"{answer['model']} on {answer['board']} (public part of the test set): {shown}")
    remaining = answer.get("remaining_today")
    left = "" if remaining is None else f"; {remaining} submission{'s' * (remaining != 1)} left today"
    click.echo(f"rank {answer['rank']} of {answer['of']} by {answer['metric']} (submission {answer['id']}){left}")
