package org.ruang.app.presenter

import java.math.BigInteger
import java.nio.ByteBuffer
import java.security.AlgorithmParameters
import java.security.KeyFactory
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.PrivateKey
import java.security.SecureRandom
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.security.spec.ECParameterSpec
import java.security.spec.ECPoint
import java.security.spec.ECPublicKeySpec
import java.security.spec.PKCS8EncodedKeySpec
import java.util.Base64
import javax.crypto.Cipher
import javax.crypto.KeyAgreement
import javax.crypto.Mac
import javax.crypto.spec.GCMParameterSpec
import javax.crypto.spec.SecretKeySpec

/**
 * The receiving side of Web Push message encryption (RFC 8291 with RFC 8188 `aes128gcm`), so
 * the app can read what the server pushes through a UnifiedPush distributor: the distributor
 * only ever sees ciphertext. The app has its own P-256 key pair and 16-byte auth secret
 * ([Keys]); it registers the public key (`p256dh`) and the secret (`auth`) with the server
 * next to the distributor's endpoint. Plain JVM crypto (javax.crypto): runs on Android 8+
 * and in JVM tests. Any malformed or forged message throws [PushDecryptException].
 */
object WebPush {
    private val B64URL: Base64.Encoder = Base64.getUrlEncoder().withoutPadding()

    /** The app's receiving keys. [publicKey] is the uncompressed point (65 bytes). */
    class Keys(val privateKey: PrivateKey, val publicKey: ByteArray, val auth: ByteArray) {
        val p256dh: String get() = B64URL.encodeToString(publicKey)
        val authB64: String get() = B64URL.encodeToString(auth)
        /** PKCS#8 of the private key, to keep in app-private storage. */
        val privateEncoded: ByteArray get() = privateKey.encoded
    }

    fun newKeys(random: SecureRandom = SecureRandom()): Keys {
        val g = KeyPairGenerator.getInstance("EC")
        g.initialize(ECGenParameterSpec("secp256r1"), random)
        val pair: KeyPair = g.generateKeyPair()
        val auth = ByteArray(16).also { random.nextBytes(it) }
        return Keys(pair.private, uncompressed(pair.public as ECPublicKey), auth)
    }

    /** Keys back from storage (PKCS#8 private key, uncompressed public key, auth secret). */
    fun keysFrom(pkcs8: ByteArray, publicKey: ByteArray, auth: ByteArray): Keys {
        val priv = KeyFactory.getInstance("EC").generatePrivate(PKCS8EncodedKeySpec(pkcs8))
        return Keys(priv, publicKey.copyOf(), auth.copyOf())
    }

    /** Keys from a raw private scalar (32 bytes), as RFC 8291's example gives it. */
    fun keysFromScalar(d: ByteArray, publicKey: ByteArray, auth: ByteArray): Keys {
        val spec = java.security.spec.ECPrivateKeySpec(BigInteger(1, d), p256())
        return Keys(KeyFactory.getInstance("EC").generatePrivate(spec), publicKey.copyOf(), auth.copyOf())
    }

    fun b64urlDecode(s: String): ByteArray = try {
        Base64.getUrlDecoder().decode(s.trim().trimEnd('='))
    } catch (e: IllegalArgumentException) {
        throw PushDecryptException("not base64url")
    }

    /** Decrypts one `aes128gcm` push body (RFC 8188 header + records) for [keys]. */
    fun decrypt(body: ByteArray, keys: Keys): ByteArray {
        if (body.size < 21) throw PushDecryptException("too short for the aes128gcm header")
        val buf = ByteBuffer.wrap(body)
        val salt = ByteArray(16).also { buf.get(it) }
        val rs = buf.int.toLong() and 0xFFFFFFFFL
        val idLen = buf.get().toInt() and 0xFF
        if (rs < 18 || rs > 1 shl 24) throw PushDecryptException("bad record size $rs")
        if (idLen != 65 || buf.remaining() < idLen + 17) throw PushDecryptException("the key id is not a P-256 public key")
        val asPublic = ByteArray(idLen).also { buf.get(it) }
        val ciphertext = ByteArray(buf.remaining()).also { buf.get(it) }

        val shared = try {
            KeyAgreement.getInstance("ECDH").run {
                init(keys.privateKey)
                doPhase(publicKeyOf(asPublic), true)
                generateSecret()
            }
        } catch (e: PushDecryptException) {
            throw e
        } catch (e: Exception) {
            throw PushDecryptException("key agreement failed: ${e.message}")
        }
        // RFC 8291 §3.3-3.4: the input keying material from the auth secret and both keys.
        val prkKey = hmac(keys.auth, shared)
        val keyInfo = "WebPush: info".toByteArray() + byteArrayOf(0) + keys.publicKey + asPublic
        val ikm = hmac(prkKey, keyInfo + byteArrayOf(1))
        // RFC 8188 §2.2-2.3: the content key and nonce.
        val prk = hmac(salt, ikm)
        val cek = hmac(prk, "Content-Encoding: aes128gcm".toByteArray() + byteArrayOf(0, 1)).copyOf(16)
        val nonceBase = hmac(prk, "Content-Encoding: nonce".toByteArray() + byteArrayOf(0, 1)).copyOf(12)

        val out = java.io.ByteArrayOutputStream()
        var offset = 0
        var seq = 0L
        val record = rs.toInt()
        while (offset < ciphertext.size) {
            val end = minOf(ciphertext.size, offset + record)
            val last = end == ciphertext.size
            val plain = try {
                Cipher.getInstance("AES/GCM/NoPadding").run {
                    init(Cipher.DECRYPT_MODE, SecretKeySpec(cek, "AES"), GCMParameterSpec(128, nonce(nonceBase, seq)))
                    doFinal(ciphertext, offset, end - offset)
                }
            } catch (e: Exception) {
                throw PushDecryptException("the message does not decrypt with this app's keys")
            }
            // Strip the padding: zeros after a delimiter, 0x02 in the last record, 0x01 before.
            var i = plain.size - 1
            while (i >= 0 && plain[i].toInt() == 0) i--
            if (i < 0) throw PushDecryptException("a record without its delimiter")
            val delimiter = plain[i].toInt()
            if ((last && delimiter != 2) || (!last && delimiter != 1)) throw PushDecryptException("bad record delimiter")
            out.write(plain, 0, i)
            offset = end
            seq++
        }
        return out.toByteArray()
    }

    private fun nonce(base: ByteArray, seq: Long): ByteArray {
        val n = base.copyOf()
        for (i in 0 until 8) n[11 - i] = (n[11 - i].toInt() xor ((seq ushr (8 * i)).toInt() and 0xFF)).toByte()
        return n
    }

    private fun hmac(key: ByteArray, data: ByteArray): ByteArray =
        Mac.getInstance("HmacSHA256").run {
            init(SecretKeySpec(key, "HmacSHA256"))
            doFinal(data)
        }

    private fun p256(): ECParameterSpec =
        AlgorithmParameters.getInstance("EC").run {
            init(ECGenParameterSpec("secp256r1"))
            getParameterSpec(ECParameterSpec::class.java)
        }

    private fun publicKeyOf(point: ByteArray): java.security.PublicKey {
        if (point.size != 65 || point[0].toInt() != 4) throw PushDecryptException("not an uncompressed P-256 point")
        val x = BigInteger(1, point.copyOfRange(1, 33))
        val y = BigInteger(1, point.copyOfRange(33, 65))
        return try {
            KeyFactory.getInstance("EC").generatePublic(ECPublicKeySpec(ECPoint(x, y), p256()))
        } catch (e: Exception) {
            throw PushDecryptException("not a point on P-256")
        }
    }

    private fun uncompressed(k: ECPublicKey): ByteArray {
        fun fixed(v: BigInteger): ByteArray {
            val b = v.toByteArray()
            return when {
                b.size == 32 -> b
                b.size > 32 -> b.copyOfRange(b.size - 32, b.size)
                else -> ByteArray(32 - b.size) + b
            }
        }
        return byteArrayOf(4) + fixed(k.w.affineX) + fixed(k.w.affineY)
    }
}

class PushDecryptException(message: String) : Exception(message)
