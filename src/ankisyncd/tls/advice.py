"""What ``ankisyncd tls init`` prints: the address to use and how each client trusts the CA."""

from __future__ import annotations

from ankisyncd.tls.certs import IPAddress
from ankisyncd.tls.issue import Issued


def sync_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}:{port}/"


def instructions(issued: Issued, hosts: list[str], ips: list[IPAddress], port: int) -> str:
    ca = issued.ca
    urls = [sync_url(h, port) for h in [*hosts, *map(str, ips)]]
    state = "created" if issued.ca_created else "reused (devices that trust it keep working)"
    lines = [
        f"CA:          {ca}  ({state})",
        f"certificate: {issued.cert}  (valid until {issued.not_after:%Y-%m-%d})",
        f"key:         {issued.key}",
        "",
        "Start the server with:",
        f"  ankisyncd --host 0.0.0.0 --tls-cert {issued.cert} --tls-key {issued.key}",
        "",
        "Sync address for your devices (https, exactly this host; no http fallback):",
        *(f"  {u}" for u in urls),
        "",
        f"Each device must trust the CA certificate {ca.name} (copy it there first):",
        "- Anki desktop, Linux (Debian/Ubuntu): sudo cp ca.pem "
        "/usr/local/share/ca-certificates/ankisyncd-ca.crt && sudo update-ca-certificates",
        "  (Fedora: sudo cp ca.pem /etc/pki/ca-trust/source/anchors/ && sudo update-ca-trust).",
        "  Or start Anki with SSL_CERT_FILE=/path/to/ca.pem; that file then replaces the",
        "  system's list, so AnkiWeb and other https sites stop working in that Anki.",
        "- Anki desktop, macOS: sudo security add-trusted-cert -d -r trustRoot "
        "-k /Library/Keychains/System.keychain ca.pem",
        "- Anki desktop, Windows: certutil -addstore -f Root ca.pem (as administrator), or open",
        "  ca.pem > Install Certificate > Local Machine > Trusted Root Certification Authorities.",
        "- AnkiDroid: Settings > Sync > Custom sync server: set the sync address above, and paste",
        "  the text of ca.pem (from -----BEGIN to END-----) as the custom certificate.",
        "- AnkiMobile: send ca.pem to the device and open it; install the profile in Settings >",
        "  General > VPN & Device Management, then turn on full trust for it in Settings >",
        "  General > About > Certificate Trust Settings.",
        "- Anki 2.1.50-2.1.56 cannot use an IP address over https: give it a DNS name from",
        "  --host (add it to the device's hosts file if no DNS server knows it) and start it with",
        "  SYNC_ENDPOINT=https://NAME:PORT/sync/ SYNC_ENDPOINT_MEDIA=https://NAME:PORT/msync/.",
        "",
        "To renew, run the same command again: the CA is reused, and a running server picks",
        "up the new certificate by itself.",
    ]
    if ips and not hosts:
        lines.append("Note: with only --ip, Anki 2.1.50-2.1.56 cannot connect (add a --host).")
    return "\n".join(lines)
