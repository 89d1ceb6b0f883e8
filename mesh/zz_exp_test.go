package mesh
import ("testing"; "fmt")
func TestExp(t *testing.T){
 in := `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
spec:
  hosts: [my-app]
  http:
  - rout: []
    fault: {abort: {httpStatus: 500}}
    timeout: 300ms
    match:
    - uri: {exact: /a, prefix: /b}
      sourceLabels: {app: x}
      headers: {X-User: {exact: a}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se, namespace: other}
spec:
  hosts: my-app
  ports: [{number: eighty, name: http, protocol: HTTP, targetport: 8080}]
  resolution: STATC
  endpoints: [{address: 1.2.3.4, labels: {version: 1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: dr}
spec:
  host: my-app
  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 30ms}}, tls: {mode: ISTIO_MUTUAL}}
  subsets: [{name: v1, labels: {version: v1}}]
---
`
 objs, diags, err := Decode("x.yaml", []byte(in), "default")
 fmt.Println(err)
 for _, o := range objs { fmt.Println(o.Ref, o.Spec) }
 for _, d := range diags { fmt.Println(d.Severity, d.Error()) }
 _, _, err = Decode("x.yaml", []byte("a: 1\n---\nb: 2\n  c: 3\n"), "default")
 fmt.Println(err)
 _, _, err = Decode("x.yaml", []byte("a: 1\n---\nb: 2\nb: 3\n"), "default")
 fmt.Println(err)
 _, _, err = Decode("x.yaml", []byte("a: 1\n---\n\tb: 2\n"), "default")
 fmt.Println(err)
}
