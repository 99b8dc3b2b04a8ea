"""biorouter inside the LiteLLM proxy: the pre-call hook that routes ``"model": "auto"``.

Registered in ``litellm_config/config.yaml`` as
``litellm_settings: {callbacks: biorouter.proxy.hook.proxy_handler_instance}``.
"""
