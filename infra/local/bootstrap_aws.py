"""Creates, in the AWS emulator, the resources the functions expect (idempotent).

Reads the names from the environment written by infra/local/stack.sh: BACKUP_BUCKET, TABLE_NAME and
the *_SECRET_ARN variables (locally, secret names). Secret values are generated here, never stored in
the repository; the first admin's credentials are the documented local ones (ENVIRONMENT=local only).
"""
import json
import os
import secrets
import sys

import boto3
from botocore.exceptions import ClientError

if os.environ.get("ENVIRONMENT") != "local":
    sys.exit("bootstrap_aws.py only runs against the local emulator (ENVIRONMENT=local)")

endpoint = os.environ["AWS_ENDPOINT_URL"]
s3 = boto3.client("s3", endpoint_url=endpoint)
ddb = boto3.client("dynamodb", endpoint_url=endpoint)
sm = boto3.client("secretsmanager", endpoint_url=endpoint)

bucket = os.environ["BACKUP_BUCKET"]
try:
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": os.environ["AWS_REGION"]})
except ClientError as e:
    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

table = os.environ["TABLE_NAME"]
try:
    ddb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
except ClientError as e:
    if e.response["Error"]["Code"] != "ResourceInUseException":
        raise


def ensure_secret(name, value):
    try:
        sm.describe_secret(SecretId=name)
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        sm.create_secret(Name=name, SecretString=value)


ensure_secret(os.environ["JWT_SECRET_ARN"], secrets.token_hex(32))
ensure_secret(os.environ["FIRST_ADMIN_SECRET_ARN"], json.dumps({"username": "test_admin", "password": "test_password"}))
ensure_secret(os.environ["FOOTBALL_DATA_TOKEN_SECRET_ARN"], "local-no-token")
print(f"[stack] AWS emulator: bucket {bucket}, table {table} and secrets ready", file=sys.stderr)
