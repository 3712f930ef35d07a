package localcluster

import "testing"

func TestLocalizeCorefile(t *testing.T) {
	in := `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       multicluster clusterset.local
    }
    rewrite continue {
        name regex ^([^.]+)\.([^.]+)\.svc\.clusterset\.local\.$ {1}.{2}.svc.cluster.local.
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`
	want := `.:{{.Port}} {
    bind 127.0.0.1
    errors
    kubernetes cluster.local clusterset.local in-addr.arpa ip6.arpa {
        kubeconfig {{.Kubeconfig}} {{.Context}}
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       multicluster clusterset.local
    }
    rewrite continue {
        name regex ^([^.]+)\.([^.]+)\.svc\.clusterset\.local\.$ {1}.{2}.svc.cluster.local.
    }
    reload
}
`
	got, err := LocalizeCorefile(in)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
