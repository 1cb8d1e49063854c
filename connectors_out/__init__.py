"""Push delivery of customers' records into the personal clouds they choose (Cozy, Solid pods,
Nextcloud/WebDAV, remoteStorage). Not built yet: the package holds its place in the layout."""
