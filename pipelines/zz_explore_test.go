package pipelines

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

const img = "accord.dev/builders/go@sha256:eee4988927cdd6b55a99e221a3e17e30bdeedfa373c4def6db8ffadace035b68"

func TestZZExplore(t *testing.T) {
	body := `metadata:
  name: t
spec:
  description: d
  params:
    - name: p
      default: x
    - name: arr
      type: array
  results:
    - name: R
      description: r
  workspaces:
    - name: output
  steps:
    - name: s
      image: ` + img + `
      env:
        - name: A
          value: b
      args: ["$(params.arr[*])"]
      script: |
        echo $(params.p) > $(results.R.path)
`
	for _, v := range []string{"tekton.dev/v1", "tekton.dev/v1beta1"} {
		ds, err := Parse(context.Background(), "f.yaml", []byte("apiVersion: "+v+"\nkind: Task\n"+body))
		if err != nil {
			fmt.Println(v, err)
			continue
		}
		b, _ := json.Marshal(ds[0].Task.Spec)
		fmt.Println(v, ds[0].Digest, string(b))
		fmt.Printf("%+v\n", ds[0].Task.ObjectMeta)
	}
}
