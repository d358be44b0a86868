#!/usr/bin/env python3
"""Manifest and build-file test for the Ruang Android app (run by scripts/android-check).

Asserts the permissions, the foreground service and its types, the App Links / ruang://
intent filters, launch modes, and the SDK levels and dependencies in app/build.gradle.kts.
With --classes DIR it also checks that every component named in the manifest was compiled.
Prints one line per check and `N passed, N failed`; exits 1 on any failure.
"""
import os
import re
import sys
import xml.etree.ElementTree as ET

A = "{http://schemas.android.com/apk/res/android}"
HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.normpath(os.path.join(HERE, "..", "app"))
MANIFEST = os.path.join(APP, "src", "main", "AndroidManifest.xml")
GRADLE = os.path.join(APP, "build.gradle.kts")
PACKAGE = "org.ruang.app"

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok or not detail else f" ({detail})"))


def attr(el, name):
    return el.get(A + name)


def full(name):
    return PACKAGE + name if name.startswith(".") else name


def filters(el):
    out = []
    for f in el.findall("intent-filter"):
        out.append({
            "autoVerify": attr(f, "autoVerify"),
            "actions": {attr(a, "name") for a in f.findall("action")},
            "categories": {attr(c, "name") for c in f.findall("category")},
            "schemes": {attr(d, "scheme") for d in f.findall("data") if attr(d, "scheme")},
            "hosts": {attr(d, "host") for d in f.findall("data") if attr(d, "host")},
            "pathPrefixes": {attr(d, "pathPrefix") for d in f.findall("data") if attr(d, "pathPrefix")},
        })
    return out


def main():
    classes = None
    if "--classes" in sys.argv:
        classes = sys.argv[sys.argv.index("--classes") + 1]

    root = ET.parse(MANIFEST).getroot()
    app = root.find("application")

    # Permissions.
    perms = {attr(p, "name") for p in root.findall("uses-permission")}
    for p in ["INTERNET", "FOREGROUND_SERVICE", "FOREGROUND_SERVICE_MEDIA_PLAYBACK",
              "FOREGROUND_SERVICE_MICROPHONE", "RECORD_AUDIO", "POST_NOTIFICATIONS",
              "MODIFY_AUDIO_SETTINGS", "BLUETOOTH_CONNECT", "ACCESS_NETWORK_STATE"]:
        check(f"permission {p}", "android.permission." + p in perms)
    extra = sorted(p for p in perms if p.split(".")[-1] not in {
        "INTERNET", "FOREGROUND_SERVICE", "FOREGROUND_SERVICE_MEDIA_PLAYBACK", "FOREGROUND_SERVICE_MICROPHONE",
        "RECORD_AUDIO", "POST_NOTIFICATIONS", "MODIFY_AUDIO_SETTINGS", "BLUETOOTH_CONNECT",
        "ACCESS_NETWORK_STATE"})
    check("no other permissions", not extra, ", ".join(extra))

    # Application.
    check("application class .RuangApp", attr(app, "name") == ".RuangApp")
    theme = attr(app, "theme") or ""
    def platform_material(t):
        return t.startswith("@android:style/Theme.Material") or t.startswith("@android:style/Theme.DeviceDefault")
    if theme.startswith("@style/"):
        # The app's own theme (res/values*/themes.xml): each variant must extend a platform
        # Material theme (no AppCompat / Material Components: the app has no AndroidX).
        name = theme[len("@style/"):]
        parents = []
        res = os.path.join(APP, "src", "main", "res")
        for d in sorted(os.listdir(res)):
            f = os.path.join(res, d, "themes.xml")
            if d.startswith("values") and os.path.exists(f):
                for st in ET.parse(f).getroot().findall("style"):
                    if st.get("name") == name:
                        parents.append(st.get("parent") or "")
        check("app theme extends a platform Material theme", bool(parents) and all(map(platform_material, parents)),
              ", ".join(parents) or "theme not found")
    else:
        check("platform Material theme", platform_material(theme), theme)
    meta = {attr(m, "name"): attr(m, "value") for m in app.findall("meta-data")}
    check("default server from the build (meta-data ${ruangServerUrl})",
          meta.get("org.ruang.DEFAULT_SERVER_URL") == "${ruangServerUrl}")

    acts = {attr(a, "name"): a for a in app.findall("activity")}
    services = {attr(s, "name"): s for s in app.findall("service")}

    # Launcher.
    welcome = acts.get(".WelcomeActivity")
    check("WelcomeActivity is the launcher", welcome is not None and any(
        "android.intent.action.MAIN" in f["actions"] and "android.intent.category.LAUNCHER" in f["categories"]
        for f in filters(welcome)))

    # Room activity: singleTask, exported, links.
    room = acts.get(".RoomActivity")
    check("RoomActivity declared", room is not None)
    if room is not None:
        check("RoomActivity launchMode singleTask", attr(room, "launchMode") == "singleTask")
        check("RoomActivity exported (links)", attr(room, "exported") == "true")
        fs = filters(room)
        view = {"android.intent.action.VIEW"}
        cats = {"android.intent.category.DEFAULT", "android.intent.category.BROWSABLE"}
        app_links = [f for f in fs if f["schemes"] == {"https"}]
        check("App Links filter (https only)", len(app_links) == 1)
        if app_links:
            f = app_links[0]
            check("App Links autoVerify=true", f["autoVerify"] == "true")
            check("App Links VIEW + DEFAULT + BROWSABLE", f["actions"] == view and cats <= f["categories"])
            check("App Links host from the ${ruangHost} placeholder", f["hosts"] == {"${ruangHost}"}, str(f["hosts"]))
            check("App Links paths /r/ and /i/", f["pathPrefixes"] == {"/r/", "/i/"}, str(f["pathPrefixes"]))
        custom = [f for f in fs if f["schemes"] == {"ruang"}]
        check("ruang:// fallback filter", len(custom) == 1)
        if custom:
            f = custom[0]
            check("ruang:// VIEW + DEFAULT + BROWSABLE", f["actions"] == view and cats <= f["categories"])
            check("ruang:// hosts r and i", f["hosts"] == {"r", "i"}, str(f["hosts"]))
            check("ruang:// not auto-verified", f["autoVerify"] is None)

    # Event links: PUBLIC_URL/e/ (App Link) and ruang://e; profiles: ruang://u.
    view = {"android.intent.action.VIEW"}
    cats = {"android.intent.category.DEFAULT", "android.intent.category.BROWSABLE"}
    event = acts.get(".EventActivity")
    check("EventActivity declared and exported (links)", event is not None and attr(event, "exported") == "true")
    if event is not None:
        fs = filters(event)
        check("EventActivity App Link /e/ on ${ruangHost}, verified", any(
            f["schemes"] == {"https"} and f["hosts"] == {"${ruangHost}"} and f["pathPrefixes"] == {"/e/"}
            and f["autoVerify"] == "true" and f["actions"] == view and cats <= f["categories"] for f in fs))
        check("EventActivity ruang://e", any(
            f["schemes"] == {"ruang"} and f["hosts"] == {"e"} and f["actions"] == view and cats <= f["categories"] for f in fs))
    profile = acts.get(".ProfileActivity")
    check("ProfileActivity ruang://u", profile is not None and any(
        f["schemes"] == {"ruang"} and f["hosts"] == {"u"} and f["actions"] == view for f in filters(profile)))
    for name in (".NotificationsActivity", ".SearchActivity"):
        a = acts.get(name)
        check(f"{name[1:]} declared, not exported", a is not None and attr(a, "exported") == "false")

    # UnifiedPush: the connector's four broadcasts reach one exported receiver, and the
    # distributors' REGISTER receivers are visible (package visibility, API 30+).
    receivers = {attr(r, "name"): r for r in app.findall("receiver")}
    up = receivers.get(".UnifiedPushReceiver")
    check("UnifiedPushReceiver declared and exported", up is not None and attr(up, "exported") == "true")
    if up is not None:
        acts_up = set().union(*[f["actions"] for f in filters(up)]) if filters(up) else set()
        want = {"org.unifiedpush.android.connector." + a for a in ("MESSAGE", "UNREGISTERED", "NEW_ENDPOINT", "REGISTRATION_FAILED")}
        check("UnifiedPushReceiver takes MESSAGE, UNREGISTERED, NEW_ENDPOINT, REGISTRATION_FAILED", acts_up == want, str(acts_up))
    queries = [attr(a, "name") for q in root.findall("queries") for i in q.findall("intent") for a in i.findall("action")]
    check("<queries> for org.unifiedpush.android.distributor.REGISTER", "org.unifiedpush.android.distributor.REGISTER" in queries)

    hallway = acts.get(".HallwayActivity")
    check("HallwayActivity not exported", hallway is not None and attr(hallway, "exported") == "false")

    # The foreground service.
    svc = services.get(".RoomService")
    check("RoomService declared", svc is not None)
    if svc is not None:
        types = set((attr(svc, "foregroundServiceType") or "").split("|"))
        check("RoomService types mediaPlayback|microphone", types == {"mediaPlayback", "microphone"}, str(types))
        check("RoomService not exported", attr(svc, "exported") == "false")

    # Every component exists as a compiled class.
    if classes:
        names = [attr(app, "name")] + list(acts) + list(services) + list(receivers)
        for n in names:
            path = os.path.join(classes, *full(n).split(".")) + ".class"
            check(f"compiled class for {full(n)}", os.path.exists(path), path)

    # Build file.
    g = open(GRADLE).read()
    check("minSdk = 26", re.search(r"\bminSdk\s*=\s*26\b", g) is not None)
    check("compileSdk = 35", re.search(r"\bcompileSdk\s*=\s*35\b", g) is not None)
    check("targetSdk = 35", re.search(r"\btargetSdk\s*=\s*35\b", g) is not None)
    check("Kotlin JVM target 17", "JvmTarget.JVM_17" in g)
    check("JNA as an AAR", re.search(r'"net\.java\.dev\.jna:jna:[^"]*@aar"', g) is not None)
    deps = re.findall(r'^\s*implementation\((.*)\)\s*$', g, re.M)
    check("only JNA as an implementation dependency", len(deps) == 1 and "jna" in deps[0], str(deps))
    check("no AndroidX / Compose", not re.search(r"androidx|compose", g, re.I))
    check("manifest placeholder ruangHost", 'manifestPlaceholders["ruangHost"]' in g)
    check("cargo ndk task for the three ABIs", all(s in g for s in (
        '"cargo", "ndk"', '"-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64"',
        '"-o", "src/main/jniLibs"', '"build", "-p", "ruang-ffi", "--release"')))
    check("bindgen task (ruang-uniffi-bindgen, library mode, ../uniffi.toml, build/generated)", all(s in g for s in (
        '"ruang-uniffi-bindgen"', '"--language", "kotlin"', '"--config", "../uniffi.toml"',
        "generated/uniffi/kotlin", "libruang_ffi.so")))
    check("bindings wired before compileKotlin", "dependsOn(uniffiBindings)" in g and 'startsWith("compile")' in g)

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
