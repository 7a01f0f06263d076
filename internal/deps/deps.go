package deps

import (
	_ "github.com/hashicorp/golang-lru/v2/simplelru"
	_ "github.com/hashicorp/memberlist"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/stretchr/testify/require"
	_ "github.com/syndtr/goleveldb/leveldb"
	_ "github.com/urfave/cli/v2"
	_ "golang.org/x/crypto/argon2"
)
