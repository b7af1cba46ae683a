"""The duty service's HTTP side: the alert API and team streams (``http``), the duty board
and panel view (``board``), their request and response models (``schemas``)."""
