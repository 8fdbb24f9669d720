"""Every Dockerfile rule: a failing case with exact line:column and a passing case."""

from __future__ import annotations

import pytest

from dockward.lint.dfrules import rules
from dockward.lint.dockerfile import parse_dockerfile
from dockward.model import Status
from dockward.rules import run_check

H = "FROM registry.example/base:1.2.3\n"


def where(rule_id: str, text: str, trusted: tuple[str, ...] = ()) -> list[tuple[int, int]]:
    from dataclasses import replace

    d = replace(parse_dockerfile(text, "Dockerfile"), trusted_registries=trusted)
    results = run_check(rules.get(rule_id), d, target="Dockerfile")
    assert all(r.status in (Status.FAIL, Status.PASS) for r in results), results
    return [
        (r.location.line, r.location.column)
        for r in results
        if r.status is Status.FAIL and r.location is not None
    ]


CASES = [
    # rule, failing Dockerfile, expected (line, column) of each finding, passing Dockerfile
    ("DW-B001", H + "USER app\nRUN x\nUSER 0:0\n", [(4, 1)], H + "USER root\nRUN x\nUSER 10001\n"),
    ("DW-B001", H + "RUN x\n", [(1, 1)], "FROM a:1 AS b\nUSER 1000\nFROM b\n"),
    ("DW-B001", "ARG U=root\n" + H + "ARG U\nUSER $U\n", [(4, 1)], H + "ARG U=1000\nUSER ${U}\n"),
    ("DW-B002", H + "USER app:app\n", [(2, 1)], H + "USER 1000:app\n"),
    (
        "DW-B003",
        "FROM debian AS a\nFROM a\nFROM nginx:latest\n",
        [(1, 1), (3, 1)],
        "ARG V=12\nFROM debian:$V AS a\nFROM a\nFROM scratch\nFROM x@sha256:" + "0" * 64 + "\n",
    ),
    (
        "DW-B005",
        H + "ADD app.py /app/\nADD rootfs.tar.xz /\n",
        [(2, 1)],
        H + "ADD rootfs.tar.xz /\n",
    ),
    (
        "DW-B006",
        H + "ADD https://e.example/x.tgz /x\n",
        [(2, 1)],
        H + "ADD --checksum=sha256:abc https://e.example/x.tgz /x\n",
    ),
    (
        "DW-B007",
        H + "HEALTHCHECK NONE\n",
        [(2, 1)],
        "FROM a:1 AS b\nHEALTHCHECK CMD true\nFROM b\n",
    ),
    ("DW-B008", H + "HEALTHCHECK CMD a\nHEALTHCHECK CMD b\n", [(3, 1)], H + "HEALTHCHECK CMD a\n"),
    (
        "DW-B009",
        H + "ENV A=1 API_TOKEN=abcdef123456\nARG DB_PASSWORD\nENV T=$GITHUB_TOKEN\n"
        "ENV GH_TOKEN=$GH_TOKEN\n",
        [(2, 9), (3, 5), (5, 5)],
        H + "ENV PASSWORD_FILE=/run/secrets/pw TOKEN_URL=https://x\nARG VERSION=1\n",
    ),
    (
        "DW-B010",
        H + "EXPOSE 80 22/tcp\nEXPOSE 20-30\n",
        [(2, 11), (3, 8)],
        H + "EXPOSE 2222 8022\n",
    ),
    ("DW-B011", H + "VOLUME /sys/fs\n", [(2, 1)], H + "VOLUME /data /devices\n"),
    ("DW-B012", H + "COPY --from=b / /\n", [(2, 1)], H + "COPY --from=b /app /app\nCOPY / /\n"),
    (
        "DW-B013",
        H + "COPY .npmrc ./\nADD certs/server.key /k\n",
        [(2, 1), (3, 1)],
        H + "COPY server.crt .envrc.example /x/\n",
    ),
    ("DW-B014", H + "COPY --chmod=0666 a /a\n", [(2, 1)], H + "COPY --chmod=0644 a /a\n"),
    ("DW-B015", H + "RUN --security=insecure x\n", [(2, 1)], H + "RUN --security=sandbox x\n"),
    ("DW-B016", H + "LABEL k=AKIAABCDEFGHIJKLMNOP\n", [(2, 7)], H + "LABEL k=v\n"),
    (
        "DW-B020",
        H + "RUN set -e \\\n  && echo x; sudo -u root apt-get install x\n",
        [(3, 14)],
        H + "RUN echo sudo\n",
    ),
    ("DW-B020", H + "RUN bash -c 'env FOO=1 sudo ls'\n", [(2, 24)], H + "RUN bash -c 'ls'\n"),
    (
        "DW-B021",
        H + "RUN curl -fsSLk https://x -o y && wget --no-check-certificate z\n",
        [(2, 5), (2, 35)],
        H + "RUN curl -fsSL https://x -o y && echo --insecure\n",
    ),
    (
        "DW-B021",
        H + "RUN git -c http.sslVerify=false clone https://x\n",
        [(2, 5)],
        H + "RUN git clone https://x\n",
    ),
    (
        "DW-B022",
        H + "RUN npm config set strict-ssl false && pip3 install --trusted-host=h x\n",
        [(2, 5), (2, 40)],
        H + "RUN npm ci && pip3 install -r requirements.txt\n",
    ),
    ("DW-B022", H + "RUN echo 'sslverify=0' >> /etc/yum.conf\n", [(2, 5)], H + "RUN echo hi\n"),
    (
        "DW-B022",
        H + "RUN pip install -i http://pypi.internal/simple x==1\n",
        [(2, 5)],
        H + "RUN pip install -i https://pypi.internal/simple x==1\n",
    ),
    (
        "DW-B023",
        H + "ENV PYTHONHTTPSVERIFY=0\nRUN GIT_SSL_NO_VERIFY=1 git clone x\n",
        [(2, 5), (3, 5)],
        H + "ENV PYTHONHTTPSVERIFY=1 GIT_SSL_NO_VERIFY=false\n",
    ),
    (
        "DW-B024",
        H + "RUN apt-get install -y --allow-unauthenticated x && rpm -i --nosignature y\n",
        [(2, 5), (2, 53)],
        H + "RUN apt-get install -y x\n",
    ),
    ("DW-B024", H + "RUN dnf install --nogpgcheck -y x\n", [(2, 5)], H + "RUN dnf install -y x\n"),
    (
        "DW-B025",
        H + "RUN wget -qO- https://x | sh\n",
        [(2, 5)],
        H + "RUN wget -qO- https://x | tar x\n",
    ),
    (
        "DW-B025",
        H + 'RUN sh -c "$(curl -fsSL https://x)"\n',
        [(2, 5)],
        H + 'RUN sh -c "$(cat /etc/hostname)"\n',
    ),
    (
        "DW-B025",
        H + "RUN <<EOF\nset -e\nbash <(curl -s https://x)\nEOF\n",
        [(4, 1)],
        H + "RUN <<EOF\ncurl -so x https://x\nEOF\n",
    ),
    (
        "DW-B026",
        H + "RUN ps aux | grep x\n",
        [(2, 1)],
        H + 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\nRUN ps aux | grep x\n',
    ),
    (
        "DW-B026",
        H + "RUN a | b\n",
        [(2, 1)],
        "FROM a:1\nRUN echo a || b\n" + "RUN set -eo pipefail; a | b\n",
    ),
    (
        "DW-B027",
        H + "RUN apt-get update\nRUN apt-get install -y x\n",
        [(2, 5)],
        H + "RUN apt-get update && apt-get install -y x\n",
    ),
    (
        "DW-B028",
        H + "RUN apt-get update && apt-get install -y x\n",
        [(2, 23)],
        H + "RUN apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*\n"
        "RUN --mount=type=cache,target=/var/lib/apt apt-get install -y y\n",
    ),
    (
        "DW-B028",
        "FROM a:1 AS build\nRUN apt-get install -y gcc\n" + H + "RUN true\n",
        [],
        H + "RUN true\n",
    ),
    (
        "DW-B029",
        H + "RUN apk update && apk add curl\n",
        [(2, 19)],
        H + "RUN apk add --no-cache curl\n",
    ),
    ("DW-B030", H + "RUN apt-get -y dist-upgrade\n", [(2, 5)], H + "RUN apt-get install -y x\n"),
    ("DW-B031", H + "RUN apt install x\n", [(2, 5)], H + "RUN apt-get install x\n"),
    (
        "DW-B032",
        H + "RUN apt-get install -y x\n",
        [(2, 5)],
        H + "RUN apt-get install -y --no-install-recommends x\n",
    ),
    (
        "DW-B033",
        H + "RUN pip install -U flask requests==2 && npm i -g left-pad @a/b@1\n",
        [(2, 5), (2, 41)],
        H + "RUN pip install flask==3 -r req.txt && go install x@v1.2.3\n",
    ),
    (
        "DW-B033",
        H + "RUN apk add --no-cache curl bash=5.2-r0 && yum install -y httpd\n",
        [(2, 5), (2, 44)],
        H + "RUN yum install -y httpd-2.4.57\n",
    ),
    (
        "DW-B034",
        H + "RUN chmod 777 /a && chmod -R o+w /b && chmod a=rwx c\n",
        [(2, 5), (2, 21), (2, 40)],
        H + "RUN chmod 755 /a && chmod u+w,g-w /b\n",
    ),
    (
        "DW-B034",
        H + "RUN chmod -R 1777 /a && chmod 0777 /b && chmod o+w,+t /c/\n",
        [(2, 5), (2, 25)],
        H + "RUN mkdir -p /a /b /c && chmod 1777 /a && chmod 777 /b && chmod +t /b "
        "&& chmod a+rwxt /c\n",
    ),
    (
        "DW-B035",
        H + "RUN echo 'root:x' | chpasswd && passwd -d app\n",
        [(2, 21), (2, 33)],
        H + "RUN usermod -L app\n",
    ),
    ("DW-B036", H + "RUN service nginx start\n", [(2, 5)], H + "RUN nginx -t\n"),
    (
        "DW-B038",
        H + "RUN chmod 4755 /a && chmod g+s,o-w /b\n",
        [(2, 5), (2, 22)],
        H + "RUN chmod 0755 /a && chmod u+x /b\n",
    ),
    (
        "DW-B037",
        H + "RUN curl -H 'x' https://u:s3cretpass@example.com/f\n",
        [(2, 17)],
        H + "RUN --mount=type=secret,id=t curl -H @/run/secrets/t https://e.example/f\n",
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "bad", "expected", "good"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule(rule_id: str, bad: str, expected: list[tuple[int, int]], good: str) -> None:
    assert sorted(where(rule_id, bad)) == sorted(expected)
    assert where(rule_id, good) == []


def test_trusted_registries() -> None:
    text = "FROM registry.example/a:1 AS a\nFROM nginx:1.25\nFROM a\n"
    assert where("DW-B004", text) == []  # no allow-list configured
    assert where("DW-B004", text, ("registry.example",)) == [(2, 1)]
    assert where("DW-B004", text, ("registry.example", "docker.io")) == []


def test_onbuild_triggers_are_checked() -> None:
    assert where("DW-B020", H + "ONBUILD RUN sudo make\n") == [(2, 13)]


def test_every_dockerfile_rule_has_a_line_test() -> None:
    tested = {c[0] for c in CASES} | {"DW-B004"}
    assert tested == {e.rule.id for e in rules if e.rule.kind == "dockerfile"}
