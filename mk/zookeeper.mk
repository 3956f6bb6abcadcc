# ZooKeeper for the tests: Debian's zookeeper package (3.8, run with the
# Java already on the machine). framework/registry/zookeeper/zktest starts
# it from /usr/share/java/zookeeper.jar; nothing runs as a system service.
# Installed once; skipped when present (about a minute on a fresh machine).
ZOOKEEPER_JAR ?= /usr/share/java/zookeeper.jar

.PHONY: zookeeper

zookeeper: $(ZOOKEEPER_JAR)

$(ZOOKEEPER_JAR):
	@echo "installing Debian's zookeeper package (apt-get)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper
	@test -f $@ || { echo "zookeeper: $@ missing after apt-get install zookeeper"; exit 1; }
