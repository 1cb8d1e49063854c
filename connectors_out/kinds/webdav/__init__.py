"""Nextcloud / WebDAV: app password typed or brought by Nextcloud's Login Flow v2."""
