"""Teams on the real local stack: `invoke team-sync` and the ad hoc user tasks, seen through the
MLflow server's own answers (200 or 403) to each user's login as `invoke env --user` prints it.

The teams and models here are the module's own (alpha, beta, gamma and their models), so the
rest of the session's stack is untouched; the teardown syncs an empty teams file, which removes
what the module made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.cli import exported, kit
from tests.integration.conftest import Stack
from tests.integration.test_training import one_error_line

pytestmark = pytest.mark.integration

A_MODEL, B_MODEL, C_MODEL = "teams-alpha-model", "teams-beta-model", "teams-gamma-model"
TEAMS = f"""
[teams.alpha]
members = ["ann"]
models = ["{A_MODEL}"]
shares = {{ {A_MODEL} = ["beta"] }}

[teams.beta]
members = ["ben"]
models = ["{B_MODEL}"]
"""


def sync(stack: Stack, file: Path, text: str) -> dict[str, Any]:
    file.write_text(text, encoding="utf-8")
    result = stack.kit("team-sync", "--file", str(file), "--json")
    return dict(json.loads(result.stdout))


class User:
    """One MLflow login (its password where the kit keeps it), calling MLflow's REST API."""

    def __init__(self, uri: str, auth: tuple[str, str]) -> None:
        self.uri, self.auth = uri, auth

    @classmethod
    def of(cls, stack: Stack, name: str) -> User:
        """`name`'s login, read from the local stack's Secrets Manager where the kit keeps it."""
        value = secrets_manager(stack).get_secret_value(SecretId=f"mlp-local/mlflow-users/{name}")
        login = json.loads(value["SecretString"])
        assert login["username"] == name
        return cls(f"http://127.0.0.1:{stack.ports['mlflow']}", (name, login["password"]))

    @classmethod
    def printed(cls, output: str) -> User:
        """The login `invoke env` printed."""
        values = exported(output)
        auth = (values["MLFLOW_TRACKING_USERNAME"], values["MLFLOW_TRACKING_PASSWORD"])
        return cls(values["MLFLOW_TRACKING_URI"], auth)

    def get_model(self, name: str) -> int:
        return self._call("GET", "registered-models/get", params={"name": name})

    def tag_model(self, name: str) -> int:
        body = {"name": name, "key": "touched-by", "value": self.auth[0]}
        return self._call("POST", "registered-models/set-tag", json=body)

    def experiment(self, name: str) -> int:
        return self._call("GET", "experiments/get-by-name", params={"experiment_name": name})

    def create_model(self, name: str) -> int:
        return self._call("POST", "registered-models/create", json={"name": name})

    def users(self) -> dict[str, Any]:
        """Every user with its roles and their grants (an admin's view)."""
        response = requests.get(f"{self.uri}/api/2.0/mlflow/users/list", auth=self.auth, timeout=30)
        return {u["username"]: u for u in response.json()["users"]}

    def _call(self, method: str, path: str, **kwargs: Any) -> int:
        url = f"{self.uri}/api/2.0/mlflow/{path}"
        return requests.request(method, url, auth=self.auth, timeout=30, **kwargs).status_code


def users(stack: Stack) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json.loads(stack.kit("users", "--json").stdout)}


def admin(stack: Stack) -> User:
    """The environment's admin, as `invoke env` logs a shell in."""
    return User.printed(stack.kit("env").stdout)


_CLIENTS: dict[Path, Any] = {}


def secrets_manager(stack: Stack) -> Any:
    """The stack's Secrets Manager, with the keys `invoke env` prints (asked once)."""
    if stack.home not in _CLIENTS:
        values = stack.client_env()
        _CLIENTS[stack.home] = boto3.client(
            "secretsmanager",
            endpoint_url=values["AWS_ENDPOINT_URL"],
            region_name=values["AWS_DEFAULT_REGION"],
            aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        )
    return _CLIENTS[stack.home]


def secret_names(stack: Stack) -> set[str]:
    return {s["Name"] for s in secrets_manager(stack).list_secrets(MaxResults=100)["SecretList"]}


@pytest.fixture(scope="module")
def snapshot(stack: Stack) -> Any:
    """Every user, role and grant of the server, as the admin lists them."""
    return admin(stack).users


@pytest.fixture(scope="module")
def teams_file(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    file = tmp_path_factory.mktemp("teams") / "teams.toml"
    first = sync(stack, file, TEAMS)
    assert first["changed"] is True
    try:
        yield file
    finally:
        sync(stack, file, "")
        for name in ("dan",):
            stack.kit("user-remove", "--name", name, "--file", str(file), check=False)


def test_a_member_manages_its_team_models_and_gets_403_on_another_teams(
    stack: Stack, teams_file: Path
) -> None:
    ann, ben = User.of(stack, "ann"), User.of(stack, "ben")
    assert ann.get_model(A_MODEL) == 200 and ann.tag_model(A_MODEL) == 200
    assert ann.experiment(A_MODEL) == 200
    assert ben.get_model(B_MODEL) == 200 and ben.tag_model(B_MODEL) == 200
    assert ann.get_model(B_MODEL) == 403 and ann.tag_model(B_MODEL) == 403
    assert ann.experiment(B_MODEL) == 403
    # The sync created the team models, so another team cannot create one and own it.
    assert ben.create_model(A_MODEL) != 200


def test_a_denied_attempt_is_in_the_audit_trail_with_the_users_name(
    stack: Stack, teams_file: Path
) -> None:
    ann = User.of(stack, "ann")
    assert ann.tag_model(B_MODEL) == 403
    entries = json.loads(stack.kit("audit", "--user", "ann", "--since", "10m", "--json").stdout)
    denied = [e for e in entries if e["outcome"] == "denied"]
    assert denied, entries
    assert denied[-1]["action"] == "POST /api/2.0/mlflow/registered-models/set-tag"
    assert denied[-1]["resource"]["name"] == B_MODEL and denied[-1]["status"] == 403
    assert denied[-1]["source"] == "127.0.0.1"
    # The sync's own changes are there too, as the admin's.
    everyone = json.loads(stack.kit("audit", "--json").stdout)
    assert any(e["user"] == "admin" and e["action"].endswith("/roles/assign") for e in everyone)
    assert ann.auth[1] not in json.dumps(everyone)
    later = json.loads(stack.kit("audit", "--since", "2999-01-01T00:00:00", "--json").stdout)
    assert later == []
    assert "--since takes a duration" in one_error_line(
        stack.kit("audit", "--since", "yesterday", check=False)
    )


def test_the_gate_acts_as_the_user_it_is_given(stack: Stack, teams_file: Path) -> None:
    """`champion --user` (or MLPLATFORM_USER) logs in as that person, not the admin: dan, who
    has nothing on the stack's model, is refused, and the refusal is his in the trail."""
    stack.kit("user-add", "--name", "dan")
    line = one_error_line(stack.kit("champion", "--user", "dan", check=False))
    assert "403" in line and "Permission denied" in line, line
    entries = json.loads(stack.kit("audit", "--user", "dan", "--since", "5m", "--json").stdout)
    assert any(
        e["outcome"] == "denied" and "registered-models/alias" in e["action"] for e in entries
    )
    as_nobody = kit("champion", env={**stack.env, "MLPLATFORM_USER": "nobody"})
    assert "no login of 'nobody'" in one_error_line(as_nobody)


def test_env_user_prints_the_login_of_one_member(stack: Stack, teams_file: Path) -> None:
    printed = User.printed(stack.kit("env", "--user", "ann").stdout)
    ann = User.of(stack, "ann")
    assert (printed.uri, printed.auth) == (ann.uri, ann.auth)
    assert printed.get_model(A_MODEL) == 200


def test_a_shared_model_is_readable_and_not_writable(stack: Stack, teams_file: Path) -> None:
    ben = User.of(stack, "ben")
    assert ben.get_model(A_MODEL) == 200 and ben.experiment(A_MODEL) == 200
    assert ben.tag_model(A_MODEL) == 403


def test_a_second_sync_changes_nothing_and_the_logins_stay_in_secrets_manager(
    stack: Stack, teams_file: Path
) -> None:
    again = sync(stack, teams_file, TEAMS)
    assert again["changed"] is False, again
    assert {"mlp-local/mlflow-users/ann", "mlp-local/mlflow-users/ben"} <= secret_names(stack)
    listed = users(stack)
    assert listed["ann"]["teams"] == ["alpha"] and listed["ann"]["managed_by"] == "team-sync"
    # No password in any output of the kit's tasks but `env --user`'s.
    password = User.of(stack, "ann").auth[1]
    assert password not in stack.kit("users").stdout + stack.kit("users", "--json").stdout


def test_the_training_client_user_can_use_every_team_model(stack: Stack, teams_file: Path) -> None:
    # The login training jobs read, where they read it.
    value = secrets_manager(stack).get_secret_value(SecretId="mlp-local/mlflow-client")
    client = json.loads(value["SecretString"])
    auth = (client["username"], client["password"])
    url = f"{stack.client_env()['MLFLOW_TRACKING_URI']}/api/2.0/mlflow/registered-models/set-tag"
    for model in (A_MODEL, B_MODEL):
        body = {"name": model, "key": "trained-by", "value": auth[0]}
        assert requests.post(url, json=body, auth=auth, timeout=30).status_code == 200


def test_each_teams_training_user_manages_its_models_only(stack: Stack, teams_file: Path) -> None:
    """The login a team's SageMaker jobs use (CDK generates it in the cloud; the sync here)."""
    trainer = User.of(stack, "alpha-training")
    assert trainer.tag_model(A_MODEL) == 200 and trainer.experiment(A_MODEL) == 200
    assert trainer.tag_model(B_MODEL) == 403 and trainer.get_model(B_MODEL) == 403
    assert users(stack)["alpha-training"]["teams"] == ["alpha"]


def test_removing_a_member_revokes_the_login_and_moving_one_takes_its_own_grants(
    stack: Stack, teams_file: Path
) -> None:
    stack.kit("user-add", "--name", "dan")
    dan = User.of(stack, "dan")
    # dan creates gamma's model before gamma exists: MLflow makes the creator its manager.
    assert dan.create_model(C_MODEL) == 200 and dan.tag_model(C_MODEL) == 200
    moved = TEAMS.replace('members = ["ben"]', 'members = ["dan"]') + (
        f'\n[teams.gamma]\nmodels = ["{C_MODEL}"]\n'
    )
    report = sync(stack, teams_file, moved)
    assert report["users_removed"] == ["ben"]
    assert f"dan: registered_model {C_MODEL}" in report["revoked"]
    assert dan.tag_model(C_MODEL) == 403 and dan.tag_model(B_MODEL) == 200
    assert "mlp-local/mlflow-users/ben" not in secret_names(stack)
    assert "ben" not in users(stack)
    assert "no login of 'ben'" in one_error_line(stack.kit("env", "--user", "ben", check=False))


def logs_in(uri: str, auth: tuple[str, str], wanted: bool) -> bool:
    """Whether the server comes to answer `wanted` for `auth` (its login cache lasts 30 s)."""
    deadline = time.monotonic() + 45
    probe = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
    while (requests.get(probe, auth=auth, timeout=30).status_code == 200) != wanted:
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def test_a_removed_member_can_no_longer_log_in(stack: Stack, teams_file: Path) -> None:
    sync(stack, teams_file, TEAMS)
    ben = User.of(stack, "ben")
    assert logs_in(ben.uri, ben.auth, True)
    sync(stack, teams_file, TEAMS.replace('members = ["ben"]', "members = []"))
    assert logs_in(ben.uri, ben.auth, False)
    # While the server's login cache (30 s) still knows the password, a request of the deleted
    # user fails another way; never 200, and then 401 for good.
    deadline = time.monotonic() + 45
    while (status := ben.get_model(A_MODEL)) != 401:
        assert status != 200 and time.monotonic() < deadline, status
        time.sleep(1)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[teams.alpha\n", "not valid TOML"),
        (TEAMS.replace(B_MODEL, A_MODEL), f"model '{A_MODEL}' is claimed by teams"),
        (TEAMS.replace('["beta"]', '["delta"]'), "no team 'delta'"),
        (TEAMS.replace('members = ["ann"]', 'members = ["admin"]'), "not a person"),
        (TEAMS + "\n[teams.beta2]\nowners = []\n", "teams.beta2.owners: unknown key"),
    ],
    ids=["malformed", "model-claimed-twice", "unknown-team", "admin-as-member", "unknown-key"],
)
def test_a_bad_teams_file_is_one_line_and_changes_nothing(
    stack: Stack, teams_file: Path, snapshot: Any, tmp_path: Path, text: str, says: str
) -> None:
    before = snapshot()
    bad = tmp_path / "teams.toml"
    bad.write_text(text, encoding="utf-8")
    assert says in one_error_line(stack.kit("team-sync", "--file", str(bad), check=False))
    assert snapshot() == before


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["grant", "--user", "nobody", "--model", A_MODEL], "no user 'nobody'"),
        (["grant", "--user", "ann", "--model", "no-such-model"], "no model 'no-such-model'"),
        (["grant", "--user", "ann", "--model", B_MODEL], "share it with"),
        (["grant", "--user", "ann", "--model", A_MODEL, "--permission", "OWN"], "one of READ"),
        (["user-remove", "--name", "ann"], "member of team 'alpha'"),
        (["user-remove", "--name", "nobody"], "no user 'nobody'"),
        (["user-add", "--name", "admin"], "not a person"),
        (["env", "--user", "nobody"], "no login of 'nobody'"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else None,
)
def test_bad_user_commands_are_one_line_and_change_nothing(
    stack: Stack, teams_file: Path, snapshot: Any, args: list[str], says: str
) -> None:
    before = snapshot()
    # The tasks that read the teams file read this module's.
    file = ["--file", str(teams_file)] if args[0] in ("grant", "user-remove") else []
    assert says in one_error_line(stack.kit(*args, *file, check=False))
    assert snapshot() == before


def test_grant_gives_an_outside_user_read_and_revoke_takes_it_back(
    stack: Stack, teams_file: Path
) -> None:
    sync(stack, teams_file, TEAMS)
    stack.kit("user-add", "--name", "dan")
    dan = User.of(stack, "dan")
    assert dan.get_model(A_MODEL) == 403
    stack.kit("grant", "--user", "dan", "--model", A_MODEL, "--file", str(teams_file))
    assert dan.get_model(A_MODEL) == 200 and dan.tag_model(A_MODEL) == 403
    # A sync leaves the grants of users outside the teams alone.
    assert sync(stack, teams_file, TEAMS)["changed"] is False
    assert dan.get_model(A_MODEL) == 200
    revoke = ["grant", "--user", "dan", "--model", A_MODEL, "--revoke", "--file", str(teams_file)]
    stack.kit(*revoke)
    assert dan.get_model(A_MODEL) == 403


def test_team_sync_on_emulated_prod_takes_the_cloud_code_path(
    prod: dict[str, str], tmp_path: Path
) -> None:
    """Prod's admin from its Secrets Manager, its MLflow by URL, the logins in its secrets."""
    file = tmp_path / "teams.toml"
    file.write_text(TEAMS, encoding="utf-8")
    sync_prod = ["team-sync", "--env", "prod", "--file", str(file), "--json"]
    report = json.loads(kit(*sync_prod, env=prod, check=True).stdout)
    try:
        assert report["users_created"] == ["alpha-training", "ann", "ben", "beta-training"]
        ann = User.printed(
            kit("env", "--env", "prod", "--user", "ann", env=prod, check=True).stdout
        )
        assert ann.uri == prod["MLPLATFORM_MLFLOW_URL_PROD"]
        assert ann.tag_model(A_MODEL) == 200 and ann.get_model(B_MODEL) == 403
    finally:
        file.write_text("", encoding="utf-8")
        kit(*sync_prod, env=prod, check=True)
