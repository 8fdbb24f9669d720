"""Start a small demo set of containers with typical mistakes (and one done right)."""

from __future__ import annotations

from dockward.engine import connect, resolve_endpoint
from dockward.engine.lab import build_busybox_image

LABEL = {"dockward.demo": "1"}


def main() -> None:
    client = connect(resolve_endpoint())
    image = "dockward-lab/busybox:1.0"
    build_busybox_image(client, image)
    for c in client.containers(all=True, filters={"label": "dockward.demo=1"}):
        client.remove_container(c["Id"], force=True)

    def run(name: str, start: bool = True, **host: object) -> None:
        hc = client.create_host_config(**host)
        c = client.create_container(
            image, name=name, labels=LABEL, host_config=hc, command=["sleep", "86400"]
        )
        if start:
            client.start(c)

    run("demo-web", port_bindings={80: 8081}, binds=["/var/run/docker.sock:/var/run/docker.sock"])
    run("demo-admin", privileged=True, start=False)  # privileged cannot start on every kernel
    run("demo-tools", cap_add=["SYS_ADMIN", "NET_ADMIN"], pid_mode="host", binds=["/etc:/host-etc"])
    run("demo-db", security_opt=["seccomp=unconfined"])
    client.create_container(
        image,
        name="demo-hardened",
        labels=LABEL,
        user="1000:1000",
        command=["sleep", "86400"],
        healthcheck={"test": ["CMD", "true"], "interval": 5_000_000_000},
        host_config=client.create_host_config(
            cap_drop=["ALL"],
            read_only=True,
            mem_limit="64m",
            cpu_shares=512,
            pids_limit=64,
            security_opt=["no-new-privileges:true"],
            port_bindings={8080: ("127.0.0.1", 8082)},
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
        ),
    )
    client.start("demo-hardened")
    print("demo: containers demo-web, demo-admin (created), demo-tools, demo-db, demo-hardened")


if __name__ == "__main__":
    main()
