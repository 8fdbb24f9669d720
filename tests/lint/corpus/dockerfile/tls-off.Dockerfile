FROM python:3.12-slim
ENV PIP_TRUSTED_HOST=pypi.internal \
    PYTHONHTTPSVERIFY=0
ENV NODE_TLS_REJECT_UNAUTHORIZED 0
RUN pip install --trusted-host pypi.internal --index-url http://pypi.internal/simple flask==3.0.0
RUN npm config set strict-ssl false; yarn config set strict-ssl false
RUN git config --global http.sslVerify false && git clone https://git.example/repo.git
RUN echo "sslverify=false" >> /etc/dnf/dnf.conf
HEALTHCHECK CMD python -c "import urllib.request as u; u.urlopen('http://localhost:8000')"
USER 1000
