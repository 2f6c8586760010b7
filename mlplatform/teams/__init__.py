"""Many teams on one platform: MLflow users, roles and grants made from the teams file.

The file itself is read by mlplatform/roster.py (layer 0: the CDK app and the runners read it
too). Here: grants.py says what each team's role grants and the changes to get there (pure);
logins.py keeps user passwords, one Secrets Manager secret each; mlflow_access.py makes the
MLflow auth calls (AuthServiceClient's, through MLflow's REST helpers); sync.py is `invoke
team-sync`; users.py the ad hoc tasks (`user-add`, `user-remove`, `users`, `grant`) and `invoke
env --user`; audit.py reads the server's audit trail (`invoke audit`).
"""
