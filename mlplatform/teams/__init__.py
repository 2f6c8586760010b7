"""Many teams on one platform: the teams file, and MLflow users, roles and grants made from it.

The modules: roster.py reads teams.toml (members, owned models, shares); grants.py says what
each team's role grants and the changes to get there (pure); logins.py keeps user passwords,
one Secrets Manager secret each; mlflow_access.py makes the MLflow auth calls
(AuthServiceClient); sync.py is `invoke team-sync`; users.py the ad hoc tasks (`user-add`,
`user-remove`, `users`, `grant`) and `invoke env --user`.
"""
