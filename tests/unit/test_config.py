from azure_vm_operator.config import OperatorConfig


def test_env_then_flags():
    env = {"AZURE_ENDPOINT": "https://arm.local", "AZVM_RESYNC_INTERVAL": "12.5", "AZVM_METRICS_PORT": "9000",
           "AZURE_DISABLE_INSTANCE_DISCOVERY": "true", "AZURE_SUBSCRIPTION_ID": "s1"}
    config = OperatorConfig.from_env(env, subscription_id="s2", namespace=None)
    assert config.azure_endpoint == "https://arm.local"
    assert config.resync_interval == 12.5
    assert config.metrics_port == 9000
    assert config.azure_disable_instance_discovery is True
    assert config.subscription_id == "s2"  # a flag beats the environment
    assert config.namespace is None


def test_defaults_target_public_azure():
    config = OperatorConfig.from_env({})
    assert config.azure_endpoint == "https://management.azure.com"
    assert config.azure_ca is None
