"""Backends implement the HAL; each is imported only when chosen, so any machine imports this."""
