"""Push delivery to personal clouds (Solid, Nextcloud/WebDAV, remoteStorage, Cozy) and signed
webhooks to PIMS clients."""
