# Flink 2.2 + PyFlink + the Kafka connector + this project's UDFs, for docker-compose.yml
# (JobManager, TaskManager and the Mongo sink all run this image).
#
# Build context is the repo root. Run `make install` first: it caches the Kafka connector jar
# and builds the project's kafka-resuming connector (connector/) into .cache/jars/, and the
# lake's Parquet and Hadoop client jars into .cache/lake-jars/, all copied in here (no download
# inside the build).
FROM flink:2.2.1-scala_2.12-java17

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv python3-pip \
 && rm -rf /var/lib/apt/lists/*

# The project in a venv; its Python is the UDF worker interpreter (python.executable).
COPY pyproject.toml README.md /opt/fraud/
COPY config /opt/fraud/config
COPY fraudctl /opt/fraud/fraudctl
COPY jobs /opt/fraud/jobs
COPY udfs /opt/fraud/udfs
COPY mongo_sink /opt/fraud/mongo_sink
COPY notify /opt/fraud/notify
COPY monitoring /opt/fraud/monitoring
COPY producer /opt/fraud/producer
COPY stack /opt/fraud/stack
COPY sql_templates /opt/fraud/sql_templates
RUN python3.11 -m venv /opt/fraud/.venv \
 && /opt/fraud/.venv/bin/pip install --no-cache-dir /opt/fraud

COPY .cache/jars/flink-sql-connector-kafka-5.0.0-2.2.jar /opt/flink/lib/
COPY .cache/jars/fraud-connector-*.jar /opt/flink/lib/
COPY .cache/lake-jars/*.jar /opt/flink/lib/
# from lib/, flink-python is loaded once; else PyFlink ships it with each job and every job
# leaves about 48 MB of TaskManager metaspace behind (stack/install.py)
RUN cp /opt/flink/opt/flink-python-*.jar /opt/flink/lib/

# Beam's log of each Python worker's environment (which holds FRAUD_CARD_TOKEN_SECRET here)
# stays out of the logs: the same lines as the local stack's (stack/services.py)
RUN for f in /opt/flink/conf/log4j*.properties; do \
      cat /opt/fraud/stack/flink_log4j_extra.properties >> "$f"; \
    done

ENV PATH=/opt/fraud/.venv/bin:$PATH
RUN echo "python.executable: /opt/fraud/.venv/bin/python" >> /opt/flink/conf/config.yaml \
 && echo "python.client.executable: /opt/fraud/.venv/bin/python" >> /opt/flink/conf/config.yaml
